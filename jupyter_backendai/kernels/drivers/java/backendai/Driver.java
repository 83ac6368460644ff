// SPDX-License-Identifier: LGPL-3.0-or-later
package backendai;

import java.io.DataInputStream;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.SourceCodeAnalysis.Completeness;
import jdk.jshell.UnresolvedReferenceException;

/**
 * The Java driver of the Backend.AI wrapper kernel (jupyter_backendai/kernels).
 *
 * <p>Cells run in one JShell with the local execution engine (the snippets run in this JVM, so
 * there is one process to start and to interrupt), split into snippets with
 * analyzeCompletion. The wrapper talks to this process over framed JSON (4-byte big-endian
 * length + UTF-8 JSON) on the two file descriptors named in the environment; the program's own
 * stdout and stderr stay ordinary pipes. SIGINT stops the running snippet with JShell.stop(),
 * which keeps every earlier declaration. The JVM leaves SIGINT alone (and Signal.handle quietly
 * does nothing) when it starts with SIGINT ignored, as the kernel's children do: the profile
 * starts java through a one-line Python exec that resets SIGINT to its default first.
 */
public final class Driver {
    private static DataInputStream cmd;
    private static OutputStream evt;
    private static final PrintStream OUT = System.out;
    private static final PrintStream ERR = System.err;
    private static JShell shell;
    private static volatile boolean running;
    private static volatile boolean interrupted;
    private static int displaySeq;
    /** The last refused stdin read, to name the cell's error after the frontend's reason. */
    private static volatile StdinError stdinError;

    private Driver() { }

    // ----- the framed channel ------------------------------------------------------------

    static synchronized void send(Map<String, Object> msg) {
        byte[] body = Json.write(msg).getBytes(StandardCharsets.UTF_8);
        byte[] head = {(byte) (body.length >>> 24), (byte) (body.length >>> 16), (byte) (body.length >>> 8), (byte) body.length};
        try {
            evt.write(head);
            evt.write(body);
            evt.flush();
        } catch (IOException e) {
            System.exit(0);
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> receive() {
        try {
            int n = cmd.readInt();
            byte[] body = new byte[n];
            cmd.readFully(body);
            return (Map<String, Object>) Json.parse(new String(body, StandardCharsets.UTF_8));
        } catch (IOException e) {
            System.exit(0);
            return null;
        }
    }

    private static Map<String, Object> msg(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int k = 0; k < kv.length; k += 2) m.put((String) kv[k], kv[k + 1]);
        return m;
    }

    // ----- what cells call ---------------------------------------------------------------

    /** A display frame, after a marker in stdout so it keeps its place in the output (ordering.py). */
    static synchronized void display(Map<String, Object> bundle) {
        int sync = ++displaySeq;
        OUT.flush();
        OUT.print("\u001b]5150;bai-display;" + sync + "\u0007");
        OUT.flush();
        send(msg("type", "display", "data", bundle, "metadata", Map.of(), "sync", sync));
    }

    /** One line from the frontend (an input_request), without its newline. */
    public static String input(String prompt) {
        if (!running) throw new IllegalStateException("input() only works while a cell runs");
        OUT.flush();
        ERR.flush();
        send(msg("type", "input", "prompt", prompt == null ? "" : prompt, "password", false));
        while (true) {
            Map<String, Object> reply = receive();
            if (!"input_reply".equals(reply.get("op"))) continue;
            if (reply.get("error") != null) {
                StdinError e = new StdinError(String.valueOf(reply.getOrDefault("ename", "StdinError")), String.valueOf(reply.get("error")));
                stdinError = e;
                throw e;
            }
            return String.valueOf(reply.get("value"));
        }
    }

    /** System.in for cells: each read with nothing buffered asks the frontend for a line; an empty answer is the end of input. */
    static final class Stdin extends InputStream {
        private byte[] buf = new byte[0];
        private int pos;

        private boolean fill() {
            if (pos < buf.length) return true;
            String line = input("");
            if (line.isEmpty()) return false;
            buf = (line + "\n").getBytes(StandardCharsets.UTF_8);
            pos = 0;
            return true;
        }

        @Override
        public synchronized int read() {
            return fill() ? buf[pos++] & 0xff : -1;
        }

        @Override
        public synchronized int read(byte[] b, int off, int len) {
            if (len == 0) return 0;
            if (!fill()) return -1;
            int n = Math.min(len, buf.length - pos);
            System.arraycopy(buf, pos, b, off, n);
            pos += n;
            return n;
        }

        @Override
        public synchronized int available() { return buf.length - pos; }
    }

    // ----- verbs -------------------------------------------------------------------------

    private static int lineOf(String code, int offset) {
        int line = 1;
        for (int k = 0; k < Math.min(offset, code.length()); k++) if (code.charAt(k) == '\n') line++;
        return line;
    }

    private static int leadingSpace(String s) {
        int k = 0;
        while (k < s.length() && Character.isWhitespace(s.charAt(k))) k++;
        return k;
    }

    private static Map<String, Object> compileError(String code, int offset, Snippet sn) {
        List<Object> tb = new ArrayList<>();
        String first = null;
        for (Diag d : (Iterable<Diag>) shell.diagnostics(sn)::iterator) {
            if (!d.isError()) continue;
            String m = d.getMessage(Locale.ROOT);
            int pos = d.getStartPosition() < 0 ? 0 : (int) d.getStartPosition();
            int line = lineOf(code, offset + pos);
            if (first == null) first = m;
            tb.add("cell line " + line + ": error: " + m);
            String[] lines = code.split("\n", -1);
            if (line - 1 < lines.length) tb.add("    " + lines[line - 1]);
        }
        if (first == null) {
            first = "the snippet was rejected: " + sn.source().strip();
            tb.add(first);
        }
        tb.add(0, "CompilationError: " + first);
        return msg("type", "error", "ename", "CompilationError", "evalue", first, "traceback", tb);
    }

    private static Map<String, Object> runtimeError(JShellException ex) {
        String ename;
        if (ex instanceof EvalException) ename = ((EvalException) ex).getExceptionClassName();
        else if (ex instanceof UnresolvedReferenceException) ename = "UnresolvedReferenceException";
        else ename = ex.getClass().getName();
        String evalue = ex.getMessage() == null ? "" : ex.getMessage();
        if (ex instanceof UnresolvedReferenceException) {
            evalue = "the snippet uses something not defined yet: " + ((UnresolvedReferenceException) ex).getSnippet().source().strip();
        }
        StdinError se = stdinError;
        if (se != null && StdinError.class.getName().equals(ename)) {
            ename = se.ename;
            evalue = se.getMessage();
        }
        List<Object> tb = new ArrayList<>();
        tb.add(ename + (evalue.isEmpty() ? "" : ": " + evalue));
        for (Throwable t = ex; t != null; t = t.getCause()) {
            if (t != ex) {
                String cn = t instanceof EvalException ? ((EvalException) t).getExceptionClassName() : t.getClass().getName();
                tb.add("Caused by: " + cn + (t.getMessage() == null ? "" : ": " + t.getMessage()));
            }
            for (StackTraceElement el : t.getStackTrace()) {
                String c = el.getClassName();
                if (c.startsWith("jdk.jshell.") || c.startsWith("jdk.internal.") || c.startsWith("java.lang.reflect.")
                        || c.startsWith("backendai.Driver")) continue;
                tb.add("\tat " + el);
            }
        }
        return msg("type", "error", "ename", ename, "evalue", evalue, "traceback", tb);
    }

    private static Map<String, Object> interruptedError() {
        return msg("type", "error", "ename", "Interrupted", "evalue", "the cell was interrupted",
                "traceback", List.of("Interrupted: the cell was interrupted (declarations made before it are kept)"));
    }

    private static boolean isExpression(Snippet sn) {
        return sn.kind() == Snippet.Kind.EXPRESSION
                || sn.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND;
    }

    private static Map<String, Object> execute(String code) {
        SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
        String rest = code;
        String value = null;
        while (true) {
            if (interrupted) return interruptedError();
            SourceCodeAnalysis.CompletionInfo ci = sca.analyzeCompletion(rest);
            Completeness c = ci.completeness();
            if (c == Completeness.EMPTY) break;
            int offset = code.length() - rest.length() + leadingSpace(rest);
            boolean whole = c == Completeness.DEFINITELY_INCOMPLETE || c == Completeness.UNKNOWN;
            String src = whole ? rest : ci.source();
            rest = whole ? "" : ci.remaining();
            stdinError = null;
            List<SnippetEvent> events = shell.eval(src);
            OUT.flush();
            ERR.flush();
            if (interrupted) return interruptedError();
            value = null;
            for (SnippetEvent ev : events) {
                if (ev.causeSnippet() != null) continue;  // a dependent snippet updated, not this one
                Snippet sn = ev.snippet();
                if (ev.status() == Snippet.Status.REJECTED) return compileError(code, offset, sn);
                if (ev.exception() != null) return runtimeError(ev.exception());
                if (isExpression(sn) && ev.value() != null) value = ev.value();
            }
            if (events.isEmpty() && whole) {
                return msg("type", "error", "ename", "CompilationError", "evalue", "incomplete input",
                        "traceback", List.of("CompilationError: incomplete input at cell line " + lineOf(code, offset)));
            }
        }
        Map<String, Object> ok = msg("type", "ok");
        if (value != null) ok.put("data", Map.of("text/plain", value));
        return ok;
    }

    private static Map<String, Object> isComplete(String code) {
        SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
        String rest = code;
        while (true) {
            SourceCodeAnalysis.CompletionInfo ci = sca.analyzeCompletion(rest);
            switch (ci.completeness()) {
                case EMPTY:
                    return msg("type", "is_complete", "status", "complete");
                case DEFINITELY_INCOMPLETE:
                case CONSIDERED_INCOMPLETE:
                    return msg("type", "is_complete", "status", "incomplete", "indent", "    ");
                case UNKNOWN:
                    return msg("type", "is_complete", "status", "invalid");
                default:
                    rest = ci.remaining();
            }
        }
    }

    private static Map<String, Object> complete(String code, int cursor) {
        int[] anchor = new int[1];
        Set<String> matches = new LinkedHashSet<>();
        for (SourceCodeAnalysis.Suggestion s : shell.sourceCodeAnalysis().completionSuggestions(code, cursor, anchor)) {
            matches.add(s.continuation());
        }
        return msg("type", "complete", "matches", new ArrayList<Object>(matches), "cursor_start", anchor[0], "cursor_end", cursor);
    }

    private static Map<String, Object> inspect(String code, int cursor) {
        StringBuilder b = new StringBuilder();
        for (SourceCodeAnalysis.Documentation d : shell.sourceCodeAnalysis().documentation(code, cursor, true)) {
            b.append(d.signature()).append('\n');
            if (d.javadoc() != null && !d.javadoc().isBlank()) b.append(d.javadoc().strip()).append("\n\n");
        }
        if (b.length() == 0) return msg("type", "inspect", "found", false);
        return msg("type", "inspect", "found", true, "data", Map.of("text/plain", b.toString().strip()));
    }

    private static int intOf(Object o, int dflt) { return o instanceof Number ? ((Number) o).intValue() : dflt; }

    // ----- main --------------------------------------------------------------------------

    public static void main(String[] args) throws Exception {
        cmd = new DataInputStream(new FileInputStream("/proc/self/fd/" + System.getenv("BACKENDAI_DRIVER_CMD_FD")));
        evt = new FileOutputStream("/proc/self/fd/" + System.getenv("BACKENDAI_DRIVER_EVENT_FD"));
        Stdin stdin = new Stdin();
        System.setIn(stdin);
        shell = JShell.builder().executionEngine("local").in(stdin).out(OUT).err(ERR).build();
        shell.addToClasspath(System.getProperty("java.class.path"));
        // SIGINT stops the running snippet; without this handler the JVM would exit on it.
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), sig -> {
            if (running) {
                interrupted = true;
                shell.stop();
            }
        });
        for (String s : new String[] {
                "backendai.Display display = backendai.Display.INSTANCE;",
                "String input(String prompt) { return backendai.Driver.input(prompt); }",
                "String input() { return backendai.Driver.input(\"\"); }",
                "0"}) {
            for (SnippetEvent ev : shell.eval(s)) {
                if (ev.status() == Snippet.Status.REJECTED) ERR.println("driver setup failed: " + s);
            }
        }
        send(msg("type", "ready", "version", System.getProperty("java.version")));
        while (true) {
            Map<String, Object> m = receive();
            String op = String.valueOf(m.get("op"));
            String code = m.get("code") == null ? "" : String.valueOf(m.get("code"));
            switch (op) {
                case "execute":
                    Map<String, Object> r;
                    interrupted = false;
                    running = true;
                    try {
                        r = execute(code);
                    } catch (RuntimeException e) {
                        r = msg("type", "error", "ename", e.getClass().getName(), "evalue", String.valueOf(e.getMessage()),
                                "traceback", List.of("driver error: " + e));
                    } finally {
                        running = false;
                    }
                    if (interrupted && !"error".equals(r.get("type"))) r = interruptedError();
                    interrupted = false;
                    OUT.flush();
                    ERR.flush();
                    send(r);
                    break;
                case "complete":
                    send(complete(code, intOf(m.get("cursor_pos"), code.length())));
                    break;
                case "is_complete":
                    send(isComplete(code));
                    break;
                case "inspect":
                    send(inspect(code, intOf(m.get("cursor_pos"), code.length())));
                    break;
                default:
                    break;  // a stray input_reply (its cell already ended)
            }
        }
    }
}
