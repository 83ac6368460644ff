## SPDX-License-Identifier: LGPL-3.0-or-later
## The Octave driver of the Backend.AI wrapper kernel (jupyter_backendai/kernels).
##
## Cells run with evalin("base", ...), so the base workspace is the notebook's state. The
## wrapper talks to this process over framed JSON (4-byte big-endian length + UTF-8 JSON) on two
## file descriptors named in the environment; the program's stdout and stderr stay pipes.
##
## Interrupts: SIGINT makes Octave unwind the running statement to its top level, past any
## try/catch, so this loop cannot catch it. Octave runs with --persist and a stdin of
## "__bai_loop__" lines (profile): after an interrupt its own top level reads the next line and
## comes back here, where the cell still marked as running is answered as Interrupted. The
## base workspace is untouched by all this.
1;

function __bai_send__ (json)
  global __bai__
  bytes = uint8 (json);
  n = numel (bytes);
  head = uint8 ([bitand(bitshift(n, -24), 255), bitand(bitshift(n, -16), 255), ...
                 bitand(bitshift(n, -8), 255), bitand(n, 255)]);
  fwrite (__bai__.evt, [head, bytes], "uint8");
  fflush (__bai__.evt);
endfunction

function msg = __bai_receive__ ()
  ## A SIGINT while idle is only acted on after the blocked read returns, at the next
  ## statement: the header is kept in the global and the body read and the header's reset are
  ## one statement, so a frame is never split (the loop then resumes it).
  global __bai__
  if (isempty (__bai__.head))
    __bai__.head = fread (__bai__.cmd, 4, "uint8=>double");
  endif
  if (numel (__bai__.head) < 4)
    exit (0);
  endif
  h = __bai__.head;
  [msg, __bai__.head] = deal (jsondecode (fread (__bai__.cmd, h(1) * 16777216 + h(2) * 65536 + h(3) * 256 + h(4), "uint8=>char")'), []);
endfunction

function s = __bai_str__ (x)
  ## A JSON string (jsonencode of a char row; an empty char must still be "").
  if (isempty (x))
    s = '""';
  else
    s = jsonencode (char (x));
  endif
endfunction

function __bai_error__ (ename, evalue, tb)
  parts = cellfun (@__bai_str__, tb, "UniformOutput", false);
  __bai_send__ (sprintf ('{"type":"error","ename":%s,"evalue":%s,"traceback":[%s]}', ...
                         __bai_str__ (ename), __bai_str__ (evalue), strjoin (parts, ",")));
endfunction

function __bai_display__ (mime, data)
  ## A display frame after a marker in stdout, so it keeps its place in the output (ordering.py).
  global __bai__
  __bai__.seq += 1;
  fflush (stdout);
  printf ("\033]5150;bai-display;%d\a", __bai__.seq);
  fflush (stdout);
  __bai_send__ (sprintf ('{"type":"display","data":{%s:%s,"text/plain":%s},"metadata":{},"sync":%d}', ...
                         __bai_str__ (mime), __bai_str__ (data), __bai_str__ (["<" mime " output>"]), __bai__.seq));
endfunction

function display_html (html)
  __bai_display__ ("text/html", html);
endfunction

function display_svg (svg)
  __bai_display__ ("image/svg+xml", svg);
endfunction

function display_png (png)
  ## PNG bytes (uint8) or the name of a PNG file.
  if (ischar (png))
    fid = fopen (png, "r");
    png = fread (fid, Inf, "uint8=>uint8")';
    fclose (fid);
  endif
  __bai_display__ ("image/png", base64_encode (uint8 (png)));
endfunction

function display_figure (h, fmt)
  ## A figure as SVG (default) or PNG, printed headless through gnuplot.
  if (nargin < 1 || isempty (h))
    h = gcf ();
  endif
  if (nargin < 2)
    fmt = "svg";
  endif
  f = [tempname() "." fmt];
  device = fmt;
  if (strcmp (fmt, "png"))
    device = "pngcairo";  # gnuplot's own PNG: no Ghostscript in the image
  endif
  print (h, f, ["-d" device]);
  if (strcmp (fmt, "png"))
    display_png (f);
  else
    display_svg (fileread (f));
  endif
  delete (f);
endfunction

function r = input (prompt, varargin)
  ## input() and its "s" form as input requests to the frontend.
  global __bai__
  if (nargin < 1)
    prompt = "";
  endif
  fflush (stdout);
  fflush (stderr);
  __bai_send__ (sprintf ('{"type":"input","prompt":%s,"password":false}', __bai_str__ (prompt)));
  while (true)
    reply = __bai_receive__ ();
    if (strcmp (reply.op, "input_reply"))
      break;
    endif
  endwhile
  if (isfield (reply, "error") && ! isempty (reply.error))
    ename = "StdinError";
    if (isfield (reply, "ename"))
      ename = reply.ename;
    endif
    error (["Octave:" ename], "%s", reply.error);
  endif
  value = reply.value;
  if (! isempty (varargin) && strcmp (varargin{1}, "s"))
    r = value;
  elseif (isempty (value))
    r = [];
  else
    r = evalin ("base", value);
  endif
endfunction

function __bai_figures__ ()
  ## Figures a cell drew appear after it as SVG, then close.
  figs = get (0, "children");
  for k = numel (figs):-1:1
    try
      display_figure (figs(k), "svg");
    catch e
      fprintf (stderr, "could not render figure %d: %s\n", figs(k), e.message);
    end_try_catch
    close (figs(k));
  endfor
endfunction

function __bai_execute__ (code)
  global __bai__
  __bai__.running = true;
  try
    evalin ("base", code);
    fflush (stdout);
    fflush (stderr);
    __bai_figures__ ();
    __bai__.running = false;
    __bai_send__ ('{"type":"ok"}');
  catch err
    __bai__.running = false;
    close all;
    fflush (stdout);
    fflush (stderr);
    ename = err.identifier;
    if (strncmp (ename, "Octave:", 7) && any (strcmp (ename(8:end), {"StdinNotImplementedError", "EOFError", "Interrupted"})))
      ename = ename(8:end);
    elseif (isempty (ename))
      ename = "error";
    endif
    tb = {["error: " err.message]};
    for k = 1:numel (err.stack)
      s = err.stack(k);
      if (strncmp (s.name, "__bai", 5) || ! isempty (strfind (s.name, "octave_driver")))
        continue;
      endif
      tb{end+1} = sprintf ("    %s at line %d column %d", s.name, s.line, s.column);
    endfor
    __bai_error__ (ename, err.message, tb);
  end_try_catch
endfunction

function __bai_is_complete__ (code)
  ## Octave has no parse-only call: count open blocks, brackets and continuations.
  s = regexprep (code, '"([^"\\]|\\.)*"', '""');
  s = regexprep (s, "(?<![\\w)\\]}.'])'[^'\n]*'", "''");
  s = regexprep (s, '[%#][^\n]*', '');
  words = regexp (s, '\<[a-z_]+\>', 'match');
  open = {"if", "for", "parfor", "while", "switch", "try", "function", "do", "unwind_protect"};
  shut = {"end", "endif", "endfor", "endparfor", "endwhile", "endswitch", "end_try_catch", ...
          "endfunction", "until", "end_unwind_protect"};
  depth = sum (ismember (words, open)) - sum (ismember (words, shut));
  ## "end" inside an index (x(end)) is not a block end
  depth += numel (regexp (s, '[(\[{][^)\]}]*\<end\>', 'match'));
  brackets = sum (s == '(' | s == '[' | s == '{') - sum (s == ')' | s == ']' | s == '}');
  cont = ! isempty (regexp (s, '\.\.\.\s*$', 'once'));
  if (depth < 0 || brackets < 0)
    status = "invalid";
  elseif (depth > 0 || brackets > 0 || cont)
    status = "incomplete";
  else
    status = "complete";
  endif
  __bai_send__ (sprintf ('{"type":"is_complete","status":"%s","indent":"  "}', status));
endfunction

function __bai_complete__ (code, pos)
  head = code(1:min (pos, numel (code)));
  tok = regexp (head, '[A-Za-z_][\w.]*$', 'match', 'once');
  m = {};
  if (! isempty (tok))
    m = cellstr (completion_matches (tok));
    m = unique (strtrim (m(! cellfun (@isempty, m))));
  endif
  parts = cellfun (@__bai_str__, m, "UniformOutput", false);
  __bai_send__ (sprintf ('{"type":"complete","matches":[%s],"cursor_start":%d,"cursor_end":%d}', ...
                         strjoin (parts, ","), numel (head) - numel (tok), numel (head)));
endfunction

function __bai_inspect__ (code, pos)
  head = code(1:min (pos, numel (code)));
  tok = regexp (head, '[A-Za-z_]\w*$', 'match', 'once');
  txt = "";
  if (! isempty (tok))
    try
      txt = evalc (sprintf ("help ('%s')", tok));
    catch
      txt = "";
    end_try_catch
  endif
  if (isempty (txt))
    __bai_send__ ('{"type":"inspect","found":false}');
  else
    __bai_send__ (sprintf ('{"type":"inspect","found":true,"data":{"text/plain":%s}}', __bai_str__ (txt)));
  endif
endfunction

function __bai_loop__ ()
  global __bai__
  if (__bai__.running)
    ## Back from an interrupt that unwound the previous cell.
    __bai__.running = false;
    close all;
    fflush (stdout);
    fflush (stderr);
    __bai_error__ ("Interrupted", "the cell was interrupted", ...
                   {"Interrupted: the cell was interrupted (the workspace is kept)"});
  endif
  while (true)
    msg = __bai_receive__ ();
    code = "";
    if (isfield (msg, "code"))
      code = msg.code;
    endif
    pos = numel (code);
    if (isfield (msg, "cursor_pos"))
      pos = msg.cursor_pos;
    endif
    switch (msg.op)
      case "execute"
        __bai_execute__ (code);
      case "complete"
        __bai_complete__ (code, pos);
      case "is_complete"
        __bai_is_complete__ (code);
      case "inspect"
        __bai_inspect__ (code, pos);
    endswitch
  endwhile
endfunction

function __bai_init__ ()
  ## In a function, so the base workspace starts empty (only the global's value lives outside).
  global __bai__
  __bai__ = struct ("cmd", fopen (["/proc/self/fd/" getenv("BACKENDAI_DRIVER_CMD_FD")], "r"), ...
                    "evt", fopen (["/proc/self/fd/" getenv("BACKENDAI_DRIVER_EVENT_FD")], "w"), ...
                    "running", false, "seq", 0, "head", []);
  unsetenv ("BACKENDAI_DRIVER_CMD_FD");
  unsetenv ("BACKENDAI_DRIVER_EVENT_FD");
  more off;
  page_screen_output (false);
  warning ("off", "Octave:gnuplot-graphics");
  warning ("off", "Octave:print:nogs");
  graphics_toolkit ("gnuplot");
  set (0, "defaultfigurevisible", "off");
  __bai_send__ (sprintf ('{"type":"ready","version":%s}', __bai_str__ (OCTAVE_VERSION)));
endfunction

warning ("off", "Octave:shadowed-function");
__bai_init__ ();
__bai_loop__ ();
