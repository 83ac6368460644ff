# SPDX-License-Identifier: LGPL-3.0-or-later
# R driver for the wrapper kernel (jupyter_backendai/kernels/wrapper.py).
#
# Reads framed JSON commands (4-byte big-endian length + UTF-8 JSON) from the fd named in
# BACKENDAI_DRIVER_CMD_FD and answers on BACKENDAI_DRIVER_EVENT_FD. Cells are evaluated in the
# global environment, one top-level expression at a time as R's console does: visible values
# print, the last one becomes the execute_result. The program's stdout/stderr are the
# process's own, streamed by the wrapper. SIGINT becomes R's "interrupt" condition; the channel
# is read and written with interrupts suspended so an interrupt never splits a frame.

local({
  .bai <- new.env()
  .bai$cmd <- file(sprintf("/proc/self/fd/%s", Sys.getenv("BACKENDAI_DRIVER_CMD_FD")), "rb")
  .bai$evt <- file(sprintf("/proc/self/fd/%s", Sys.getenv("BACKENDAI_DRIVER_EVENT_FD")), "wb")
  .bai$display_seq <- 0L
  .bai$running <- FALSE
  .bai$plot_dir <- tempfile("bai-plots-")
  dir.create(.bai$plot_dir, mode = "0700")

  send <- function(msg) {
    body <- charToRaw(enc2utf8(as.character(jsonlite::toJSON(msg, auto_unbox = TRUE, null = "null",
                                                             digits = NA, force = TRUE))))
    n <- length(body)
    header <- as.raw(c(n %/% 16777216, (n %/% 65536) %% 256, (n %/% 256) %% 256, n %% 256))
    suspendInterrupts({
      writeBin(c(header, body), .bai$evt)
      flush(.bai$evt)
    })
  }

  # One frame, or NULL at end of input. The caller keeps the result even if an interrupt
  # that arrived meanwhile fires when this returns.
  receive <- function() {
    header <- readBin(.bai$cmd, "raw", 4L)
    if (length(header) < 4L) return(NULL)
    n <- sum(as.integer(header) * c(16777216, 65536, 256, 1))
    body <- if (n > 0) readBin(.bai$cmd, "raw", n) else raw(0)
    text <- rawToChar(body)
    Encoding(text) <- "UTF-8"
    jsonlite::fromJSON(text, simplifyVector = FALSE)
  }

  # ----- helpers for the user (attached as "backendai" on the search path) -----------------

  helpers <- new.env()

  helpers$display <- function(data, metadata = NULL) {
    if (!is.list(data) || is.null(names(data))) stop("display() takes a named list: mime type -> content")
    flush(stdout())
    .bai$display_seq <- .bai$display_seq + 1L
    # The marker puts the display at this place in stdout (kernels/ordering.py).
    cat(sprintf("\033]5150;bai-display;%d\a", .bai$display_seq))
    flush(stdout())
    send(list(type = "display", data = lapply(data, function(x) paste(as.character(x), collapse = "\n")),
              metadata = if (is.null(metadata)) structure(list(), names = character(0)) else metadata,
              sync = .bai$display_seq))
    invisible(NULL)
  }

  # text: a file name when one single string names an existing file, else the content itself.
  read_text <- function(x) {
    if (is.character(x) && length(x) == 1L && !grepl("\n", x, fixed = TRUE) && file.exists(x))
      paste(readLines(x, warn = FALSE, encoding = "UTF-8"), collapse = "\n")
    else paste(as.character(x), collapse = "\n")
  }
  read_bytes <- function(x) {
    if (is.raw(x)) return(x)
    if (is.character(x) && length(x) == 1L && file.exists(x)) return(readBin(x, "raw", file.info(x)$size))
    stop("expected a raw vector or the name of a file")
  }

  helpers$display_html <- function(x) helpers$display(list("text/html" = read_text(x)))
  helpers$display_markdown <- function(x) helpers$display(list("text/markdown" = read_text(x)))
  helpers$display_svg <- function(x) helpers$display(list("image/svg+xml" = read_text(x)))
  b64 <- function(bytes) gsub("[\r\n]", "", jsonlite::base64_enc(bytes))
  helpers$display_png <- function(x) helpers$display(list("image/png" = b64(read_bytes(x))))
  helpers$display_jpeg <- function(x) helpers$display(list("image/jpeg" = b64(read_bytes(x))))

  # readline() answers through the frontend's input_request (R's own returns "" when not
  # interactive).
  helpers$readline <- function(prompt = "") {
    if (!.bai$running) stop("readline() only works while a cell runs")
    flush(stdout())
    send(list(type = "input", prompt = paste(prompt, collapse = ""), password = FALSE))
    reply <- NULL
    suspendInterrupts(reply <- receive())
    if (is.null(reply)) quit(save = "no", status = 0)
    if (!is.null(reply$ename)) {
      stop(structure(class = c(reply$ename, "error", "condition"),
                     list(message = as.character(reply$error), call = sys.call())))
    }
    as.character(reply$value)
  }
  # Reads of the process's stdin ask the frontend as well: readLines(stdin()), readLines("stdin"),
  # scan() of the console or of stdin. Each line is one input_request; an empty answer is end
  # of input (as Ctrl-D at a terminal).
  reads_stdin <- function(con, console_too) {
    if (is.character(con)) return(identical(con, "stdin") || (console_too && identical(con, "")))
    inherits(con, "connection") && identical(summary(con)$description, "stdin")
  }
  ask_lines <- function(enough) {
    got <- character()
    while (!enough(got)) {
      line <- helpers$readline("")
      if (!nzchar(line)) break
      got <- c(got, line)
    }
    got
  }
  base_readLines <- base::readLines
  helpers$readLines <- function(con = stdin(), n = -1L, ...) {
    if (!.bai$running || !reads_stdin(con, FALSE)) return(base_readLines(con, n, ...))
    n <- as.integer(n)
    ask_lines(function(got) n >= 0L && length(got) >= n)
  }
  base_scan <- base::scan
  helpers$scan <- function(...) {
    # the caller's arguments by base::scan's names (positional ones too)
    args <- as.list(match.call(base_scan, as.call(c(list(quote(scan)), list(...)))))[-1]
    file <- if (is.null(args$file)) "" else args$file
    if (!is.null(args$text) || !.bai$running || !reads_stdin(file, TRUE)) return(base_scan(...))
    args$file <- NULL
    what <- if (is.null(args$what)) double() else args$what
    limit <- if (!is.null(args$n)) args$n else if (!is.null(args$nmax)) args$nmax * max(1L, length(what)) else -1L
    parse <- function(lines, quiet) do.call(base_scan, modifyList(args, list(text = lines, quiet = quiet)))
    lines <- ask_lines(function(got) limit > 0L && length(got) > 0L && length(unlist(parse(got, TRUE))) >= limit)
    parse(lines, isTRUE(args$quiet))
  }
  # Replaced in base too, so that code calling base::readline or packages using them ask as well.
  base_env <- baseenv()
  for (name in c("readline", "readLines", "scan")) {
    unlockBinding(name, base_env)
    assign(name, helpers[[name]], envir = base_env)
    lockBinding(name, base_env)
  }

  # R ignores SIGINT while system()/system2() wait; r_launch.py counts the interrupts on a pipe.
  fd <- Sys.getenv("BACKENDAI_R_INTERRUPT_FD")
  .bai$intr <- if (nzchar(fd)) file(sprintf("/proc/self/fd/%s", fd), "rb", blocking = FALSE) else NULL
  .bai$interrupted_meanwhile <- function() {
    got <- FALSE
    if (!is.null(.bai$intr)) repeat {
      if (length(readBin(.bai$intr, "raw", 256L)) == 0L) break
      got <- TRUE
    }
    got
  }
  waiting <- function(orig) {
    force(orig)
    function(...) {
    .bai$interrupted_meanwhile()
    res <- withVisible(orig(...))
    if (.bai$interrupted_meanwhile())
      signalCondition(structure(class = c("interrupt", "condition"), list(message = "interrupted", call = NULL)))
    if (res$visible) res$value else invisible(res$value)
  }}
  for (name in c("system", "system2")) {
    unlockBinding(name, base_env)
    assign(name, waiting(get(name, envir = base_env)), envir = base_env)
    lockBinding(name, base_env)
  }

  attach(helpers, name = "backendai", warn.conflicts = FALSE)

  # Plots go to SVG files; each cell's pages are shown when it ends.
  options(device = function(...) grDevices::svg(filename = file.path(.bai$plot_dir, "plot%03d.svg"),
                                                width = 7, height = 5, onefile = FALSE),
          warn = 1, width = 80)

  show_plots <- function() {
    for (d in grDevices::dev.list()) grDevices::dev.off(d)
    files <- sort(list.files(.bai$plot_dir, full.names = TRUE))
    for (f in files) {
      svg <- paste(readLines(f, warn = FALSE), collapse = "\n")
      unlink(f)
      if (nzchar(svg)) helpers$display(list("image/svg+xml" = svg))
    }
  }

  # ----- execute ----------------------------------------------------------------------------

  # Its frame marks where the user's calls start in a traceback (then eval, then theirs).
  bai_eval <- function(expr) withVisible(eval(expr, envir = globalenv()))

  format_value <- function(value) paste(utils::capture.output(print(value)), collapse = "\n")

  error_reply <- function(cond, calls) {
    msg <- conditionMessage(cond)
    call <- conditionCall(cond)
    head <- if (is.null(call)) paste0("Error: ", msg)
            else paste0("Error in ", paste(deparse(call, nlines = 1L), collapse = ""), ": ", msg)
    tb <- head
    if (length(calls) > 0) {
      names <- vapply(calls, function(cl) paste(deparse(cl, nlines = 1L, width.cutoff = 60L), collapse = ""), "")
      tb <- c(tb, paste0("Calls: ", paste(names, collapse = " -> ")))
    }
    list(type = "error", ename = class(cond)[1], evalue = msg, traceback = as.list(tb))
  }

  run_cell <- function(code) {
    exprs <- tryCatch(parse(text = code, keep.source = FALSE), error = function(e) e)
    if (inherits(exprs, "error")) {
      msg <- sub("^<text>:", "", conditionMessage(exprs))
      return(list(type = "error", ename = "SyntaxError", evalue = msg,
                  traceback = list(paste0("Error: ", msg))))
    }
    calls <- NULL
    last <- NULL
    outcome <- tryCatch(
      withCallingHandlers({
        for (i in seq_along(exprs)) {
          res <- bai_eval(exprs[[i]])
          if (res$visible) {
            if (i == length(exprs)) last <- format_value(res$value) else print(res$value)
          }
        }
        NULL
      }, error = function(e) {
        # The user's frames: after our eval(), before this handler (and stop()'s helper).
        all <- sys.calls()
        mine <- which(vapply(all, function(cl) identical(cl[[1]], quote(bai_eval)), TRUE))
        base <- if (length(mine)) mine[length(mine)] else length(all)
        user <- if (length(all) > base + 1L) all[(base + 1L):(length(all) - 1L)] else list()
        while (length(user) && deparse(user[[1]][[1]])[1] %in% c("eval", "withVisible")) user <- user[-1]
        keep <- !vapply(user, function(cl) {
          f <- cl[[1]]
          is.name(f) && as.character(f) %in% c(".handleSimpleError", "h", "stop")
        }, TRUE)
        calls <<- user[keep]
      }),
      interrupt = function(c) list(type = "error", ename = "Interrupted", evalue = "interrupted",
                                   traceback = list("Interrupted: the cell was stopped")),
      error = function(e) error_reply(e, calls))
    flush(stdout())
    if (!is.null(outcome)) return(outcome)
    if (is.null(last)) list(type = "ok") else list(type = "ok", data = list("text/plain" = last))
  }

  execute <- function(code) {
    .bai$running <- TRUE
    .bai$interrupted_meanwhile()  # interrupts sent while idle
    on.exit(.bai$running <- FALSE)
    reply <- run_cell(code)
    tryCatch(show_plots(), error = function(e) message("plot: ", conditionMessage(e)))
    reply
  }

  # ----- queries ----------------------------------------------------------------------------

  line_before <- function(code, cursor) {
    chars <- strsplit(code, "")[[1]]
    before <- paste(chars[seq_len(min(cursor, length(chars)))], collapse = "")
    lines <- strsplit(before, "\n", fixed = TRUE)[[1]]
    if (endsWith(before, "\n") || length(lines) == 0L) "" else lines[length(lines)]
  }

  complete <- function(code, cursor) {
    line <- line_before(code, cursor)
    ce <- utils:::.CompletionEnv
    utils:::.assignLinebuffer(line)
    utils:::.assignEnd(nchar(line))
    utils:::.guessTokenFromLine()
    utils:::.completeToken()
    matches <- as.character(utils:::.retrieveCompletions())
    token <- ce[["token"]]
    list(type = "complete", matches = as.list(unique(matches)),
         cursor_start = cursor - nchar(token), cursor_end = cursor)
  }

  is_complete <- function(code) {
    res <- tryCatch({ parse(text = code, keep.source = FALSE); "complete" }, error = function(e) {
      m <- conditionMessage(e)
      if (grepl("unexpected end of input|INCOMPLETE_STRING|unexpected end of line", m)) "incomplete" else "invalid"
    })
    list(type = "is_complete", status = res, indent = if (res == "incomplete") "  " else "")
  }

  inspect <- function(code, cursor) {
    line <- line_before(code, cursor)
    chars <- strsplit(code, "")[[1]]
    # The name around the cursor.
    after <- if (cursor < length(chars)) paste(chars[(cursor + 1L):length(chars)], collapse = "") else ""
    name <- paste0(regmatches(line, regexpr("[A-Za-z0-9._]*$", line)),
                   regmatches(after, regexpr("^[A-Za-z0-9._]*", after)))
    if (!nzchar(name) || !exists(name, envir = globalenv())) return(list(type = "inspect", found = FALSE))
    obj <- get(name, envir = globalenv())
    text <- character(0)
    topic <- utils::help(name)
    if (length(topic) > 0L) {
      rd <- tryCatch(utils:::.getHelpFile(topic[1]), error = function(e) NULL)
      if (!is.null(rd))
        text <- utils::capture.output(tools::Rd2txt(rd, options = list(underline_titles = FALSE)))
    }
    if (length(text) == 0L) {
      text <- if (is.function(obj)) utils::capture.output(print(args(obj)))
              else utils::capture.output(utils::str(obj))
    }
    list(type = "inspect", found = TRUE, data = list("text/plain" = paste(text, collapse = "\n")))
  }

  # ----- the loop ----------------------------------------------------------------------------

  handle <- function(msg) {
    op <- msg$op
    if (identical(op, "execute")) return(execute(as.character(msg$code)))
    # Queries answer even if an interrupt comes meanwhile.
    out <- NULL
    tryCatch(suspendInterrupts({
      out <- tryCatch(switch(op,
        complete = complete(as.character(msg$code), as.integer(msg$cursor_pos)),
        is_complete = is_complete(as.character(msg$code)),
        inspect = inspect(as.character(msg$code), as.integer(msg$cursor_pos)),
        NULL), error = function(e) NULL)
      if (is.null(out) && !is.null(op)) out <- switch(op,
        complete = list(type = "complete", matches = list(), cursor_start = msg$cursor_pos, cursor_end = msg$cursor_pos),
        is_complete = list(type = "is_complete", status = "unknown"),
        inspect = list(type = "inspect", found = FALSE),
        NULL)
    }), interrupt = function(c) NULL)
    out
  }

  send(list(type = "ready", version = paste(R.version$major, R.version$minor, sep = ".")))
  repeat {
    .bai$msg <- NULL
    .bai$eof <- FALSE
    # An interrupt while idle fires here at the latest and is dropped (the frame is kept).
    tryCatch(suspendInterrupts({
      m <- receive()
      if (is.null(m)) .bai$eof <- TRUE else .bai$msg <- m
    }), interrupt = function(c) NULL)
    if (.bai$eof) break
    if (is.null(.bai$msg)) next
    .bai$reply <- NULL
    tryCatch(.bai$reply <- handle(.bai$msg), interrupt = function(c) {
      .bai$reply <- list(type = "error", ename = "Interrupted", evalue = "interrupted",
                         traceback = list("Interrupted: the cell was stopped"))
    })
    if (!is.null(.bai$reply)) tryCatch(send(.bai$reply), interrupt = function(c) NULL)
  }
  quit(save = "no", status = 0)
})
