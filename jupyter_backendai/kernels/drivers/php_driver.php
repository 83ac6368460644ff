<?php
// SPDX-License-Identifier: LGPL-3.0-or-later
// The PHP driver of the Backend.AI wrapper kernel (jupyter_backendai/kernels).
//
// Each cell is served by a stream wrapper as the file cell://N and `include`d from this
// script's global scope, so variables, functions, classes and constants persist, and errors
// and traces name the cell and its own line numbers. A final expression statement becomes
// `return (...)`, so its value is the cell's execute_result. Functions and classes cannot be
// redeclared in PHP (a fatal error would end the process), so such a cell is refused first.
//
// The wrapper talks to this process over framed JSON (4-byte big-endian length + UTF-8 JSON)
// on two file descriptors named in the environment; the program's stdout and stderr are
// ordinary pipes. SIGINT (pcntl_async_signals) throws \BackendAI\Interrupted in the running
// cell. Reads of stdin (input(), readline(), fgets(STDIN)) become input requests: STDIN in a
// cell is read as \BackendAI\stdin() (an empty answer ends that input), and 'php://stdin' as
// bai-stdin://; readline is disabled on the command line
// (-d disable_functions=readline) so that this file can define its own.

namespace BackendAI {

/** Thrown into a running cell by SIGINT: an \Error, so `catch (Exception $e)` lets it pass. */
final class Interrupted extends \Error {}

/** An input request the frontend could not answer (no stdin, end of input, ...). */
final class InputError extends \RuntimeException {
    public string $ename;
    public function __construct(string $ename, string $message) {
        parent::__construct($message);
        $this->ename = $ename;
    }
}

/** cell://N: the source of cell N, for include. */
final class CellStream {
    /** @var array<int,string> */
    public static array $sources = [];
    public $context;
    private string $data = '';
    private int $pos = 0;

    public function stream_open(string $path, string $mode, int $options, ?string &$opened): bool {
        $n = (int)substr($path, strlen('cell://'));
        if (!isset(self::$sources[$n])) return false;
        $this->data = self::$sources[$n];
        return true;
    }
    public function stream_read(int $count): string|false {
        $chunk = substr($this->data, $this->pos, $count);
        $this->pos += strlen($chunk);
        return $chunk;
    }
    public function stream_eof(): bool { return $this->pos >= strlen($this->data); }
    public function stream_stat(): array|false { return ['size' => strlen($this->data), 'mode' => 0100444]; }
    public function url_stat(string $path, int $flags): array|false {
        return isset(self::$sources[(int)substr($path, strlen('cell://'))]) ? ['mode' => 0100444] : false;
    }
    public function stream_set_option(int $option, int $arg1, ?int $arg2): bool { return false; }
    public function stream_close(): void {}
}

/**
 * bai-stdin://: a stream whose reads are input requests (what STDIN and php://stdin mean in a
 * cell). A frontend cannot send end-of-file, so an empty answer ends the input: loops like
 * `while (($line = fgets(STDIN)) !== false)` and file_get_contents('php://stdin') can finish.
 */
final class StdinStream {
    public $context;
    private bool $eof = false;
    public function stream_open(string $path, string $mode, int $options, ?string &$opened): bool { return true; }
    public function stream_read(int $count): string|false {
        if ($this->eof) return '';
        try {
            $line = Driver::ask('', false);
        } catch (InputError $e) {
            if ($e->ename !== 'EOFError') throw $e;
            $line = '';
        }
        if ($line === '') {
            $this->eof = true;
            return '';
        }
        return $line . "\n";
    }
    public function stream_eof(): bool { return $this->eof; }
    public function stream_write(string $data): int { return 0; }
    public function stream_stat(): array|false { return ['mode' => 0010444]; }
    public function stream_set_option(int $option, int $arg1, ?int $arg2): bool { return false; }
    public function stream_close(): void {}
}

/** STDIN of the running cell: a fresh stream per cell (an earlier cell may have ended its input). */
function stdin(bool $reset = false) {
    static $stream = null;
    if ($reset) {
        if ($stream !== null) fclose($stream);
        $stream = null;
        return null;
    }
    if ($stream === null) $stream = fopen('bai-stdin://', 'r');
    return $stream;
}

final class Driver {
    /** @var resource */
    private static $cmd;
    /** @var resource */
    private static $evt;
    public static bool $running = false;
    private static bool $sending = false;
    private static bool $interruptPending = false;
    public static int $cell = 0;
    private static int $displaySeq = 0;
    /** @var array<string,int> functions and classes (lower-case) => the cell that declared them */
    private static array $declared = [];

    public static function start(): void {
        $cmdFd = (int)(getenv('BACKENDAI_DRIVER_CMD_FD') ?: 3);
        $evtFd = (int)(getenv('BACKENDAI_DRIVER_EVENT_FD') ?: 4);
        putenv('BACKENDAI_DRIVER_CMD_FD');
        putenv('BACKENDAI_DRIVER_EVENT_FD');
        self::$cmd = fopen("php://fd/$cmdFd", 'rb');
        self::$evt = fopen("php://fd/$evtFd", 'wb');
        stream_wrapper_register('cell', CellStream::class);
        stream_wrapper_register('bai-stdin', StdinStream::class);
        ini_set('display_errors', 'stderr');
        ini_set('log_errors', '0');
        ini_set('html_errors', '0');
        error_reporting(E_ALL);
        set_error_handler([self::class, 'onWarning']);
        register_shutdown_function([self::class, 'onShutdown']);
        pcntl_async_signals(true);
        pcntl_signal(SIGINT, function () {
            if (!self::$running) return;
            if (self::$sending) {  // never leave half a frame on the channel
                self::$interruptPending = true;
                return;
            }
            self::$running = false;
            throw new Interrupted('the cell was interrupted');
        });
    }

    // ----- the framed channel ----------------------------------------------------------

    public static function send(array $msg): void {
        $body = json_encode($msg, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
            | JSON_PRESERVE_ZERO_FRACTION | JSON_PARTIAL_OUTPUT_ON_ERROR);
        $data = pack('N', strlen($body)) . $body;
        self::$sending = true;
        try {
            while ($data !== '') {
                $n = fwrite(self::$evt, $data);
                if ($n === false || $n === 0) exit(0);
                $data = substr($data, $n);
            }
            fflush(self::$evt);
        } finally {
            self::$sending = false;
        }
        if (self::$interruptPending) {
            self::$interruptPending = false;
            if (self::$running) {
                self::$running = false;
                throw new Interrupted('the cell was interrupted');
            }
        }
    }

    private static function readExact(int $n): ?string {
        $buf = '';
        while (strlen($buf) < $n) {
            $chunk = fread(self::$cmd, $n - strlen($buf));
            if ($chunk === false || ($chunk === '' && feof(self::$cmd))) return null;
            $buf .= $chunk;
        }
        return $buf;
    }

    public static function receive(): ?array {
        $head = self::readExact(4);
        if ($head === null) return null;
        $n = unpack('N', $head)[1];
        $body = $n > 0 ? self::readExact($n) : '';
        if ($body === null) return null;
        return json_decode($body, true);
    }

    // ----- what a cell sees ------------------------------------------------------------

    /** One line from the frontend (an input_request). */
    public static function ask(string $prompt, bool $password): string {
        if (!self::$running) throw new \RuntimeException('input() only works while a cell runs');
        self::send(['type' => 'input', 'prompt' => $prompt, 'password' => $password]);
        $reply = self::receive();
        if ($reply === null) exit(0);
        if (isset($reply['error'])) throw new InputError((string)($reply['ename'] ?? 'InputError'), (string)$reply['error']);
        return (string)($reply['value'] ?? '');
    }

    public static function display(array $bundle, array $metadata): void {
        foreach ($bundle as $mime => $data) {
            if (in_array($mime, ['image/png', 'image/jpeg', 'image/gif'], true) && is_string($data)
                && !preg_match('~^[A-Za-z0-9+/=\r\n]*$~', $data)) {
                $bundle[$mime] = base64_encode($data);
            } elseif (!is_string($data) && !is_array($data)) {
                $bundle[$mime] = self::repr($data);
            }
        }
        if (!isset($bundle['text/plain'])) $bundle['text/plain'] = '<' . array_key_first($bundle) . ' output>';
        // A marker in stdout, in line with echo, puts the display at this place in the output
        // (jupyter_backendai/kernels/ordering.py).
        $seq = ++self::$displaySeq;
        fwrite(STDOUT, "\x1b]5150;bai-display;$seq\x07");
        fflush(STDOUT);
        self::send(['type' => 'display', 'data' => $bundle, 'metadata' => (object)$metadata, 'sync' => $seq]);
    }

    // ----- values as text --------------------------------------------------------------

    public static function repr(mixed $v, int $depth = 0): string {
        if (is_array($v)) {
            if ($v === []) return '[]';
            if ($depth > 3) return '[...]';
            $list = array_is_list($v);
            $parts = [];
            $i = 0;
            foreach ($v as $k => $item) {
                if (++$i > 100) { $parts[] = '...'; break; }
                $parts[] = ($list ? '' : var_export($k, true) . ' => ') . self::repr($item, $depth + 1);
            }
            return '[' . implode(', ', $parts) . ']';
        }
        if ($v instanceof \Closure) return 'Closure';
        if (is_object($v)) {
            if ($v instanceof \UnitEnum) return get_class($v) . '::' . $v->name;
            if (method_exists($v, '__toString')) return get_class($v) . ' ' . var_export((string)$v, true);
            if ($depth > 3) return get_class($v) . ' {...}';
            $parts = [];
            foreach (get_object_vars($v) as $k => $item) $parts[] = "$k: " . self::repr($item, $depth + 1);
            return get_class($v) . ' {' . implode(', ', $parts) . '}';
        }
        if (is_resource($v)) return 'resource(' . get_resource_type($v) . ')';
        return var_export($v, true);
    }

    // ----- cells: rewriting and errors -------------------------------------------------

    /** Tokens without whitespace and comments, as [id, text, line]. */
    private static function significant(array $tokens): array {
        $out = [];
        foreach ($tokens as $i => $t) {
            if (is_array($t) && in_array($t[0], [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT, T_OPEN_TAG], true)) continue;
            $out[] = [$i, is_array($t) ? $t[0] : $t, is_array($t) ? $t[1] : $t];
        }
        return $out;
    }

    private static function parses(string $code): bool {
        try {
            token_get_all("<?php " . $code, TOKEN_PARSE);
            return true;
        } catch (\Throwable $e) {
            return false;
        }
    }

    private const NOT_EXPRESSIONS = [
        T_ECHO, T_PRINT, T_RETURN, T_IF, T_ELSE, T_ELSEIF, T_FOR, T_FOREACH, T_WHILE, T_DO, T_SWITCH, T_FUNCTION,
        T_CLASS, T_ABSTRACT, T_FINAL, T_INTERFACE, T_TRAIT, T_NAMESPACE, T_USE, T_CONST, T_GLOBAL, T_STATIC,
        T_UNSET, T_TRY, T_BREAK, T_CONTINUE, T_GOTO, T_DECLARE, T_INLINE_HTML, T_CLOSE_TAG, T_READONLY,
        T_ENUM, T_THROW, T_EXIT, T_INCLUDE, T_INCLUDE_ONCE, T_REQUIRE, T_REQUIRE_ONCE,
    ];
    private const ASSIGN = ['=', T_PLUS_EQUAL, T_MINUS_EQUAL, T_MUL_EQUAL, T_DIV_EQUAL, T_CONCAT_EQUAL, T_MOD_EQUAL,
        T_AND_EQUAL, T_OR_EQUAL, T_XOR_EQUAL, T_SL_EQUAL, T_SR_EQUAL, T_POW_EQUAL, T_COALESCE_EQUAL, T_INC, T_DEC];

    /**
     * The cell as it runs: `STDIN` read through input requests, a final expression statement
     * (not an assignment) returned, a missing final `;` added. Lines stay where they were.
     */
    public static function prepare(string $code): string {
        self::$isExpression = false;
        $code = preg_replace('~^\s*<\?php\b~', '', $code, 1);
        $tokens = token_get_all("<?php " . $code);
        $sig = self::significant($tokens);
        if ($sig === []) return $code;
        // STDIN (the constant) -> \BackendAI\stdin(); the literal 'php://stdin' -> 'bai-stdin://'
        foreach ($sig as $k => [$i, $id, $text]) {
            if ($id === T_CONSTANT_ENCAPSED_STRING && in_array(strtolower(substr($text, 1, -1)), ['php://stdin', 'php://fd/0'], true)) {
                $tokens[$i] = "'bai-stdin://'";
                continue;
            }
            if (($id === T_STRING && $text === 'STDIN') || ($id === T_NAME_FULLY_QUALIFIED && $text === '\\STDIN')) {
                $prev = $k > 0 ? $sig[$k - 1][1] : null;
                if (!in_array($prev, [T_OBJECT_OPERATOR, T_NULLSAFE_OBJECT_OPERATOR, T_DOUBLE_COLON, T_CONST,
                                      T_FUNCTION, T_CLASS, T_NEW], true)) {
                    $tokens[$i] = '\\BackendAI\\stdin()';
                }
            }
        }
        // The last top-level statement.
        $depth = 0;
        $start = 0;
        $last = null;
        foreach ($sig as $k => [$i, $id, $text]) {
            if ($id === '(' || $id === '[' || $id === '{' || $id === T_CURLY_OPEN || $id === T_DOLLAR_OPEN_CURLY_BRACES) $depth++;
            elseif ($id === ')' || $id === ']' || $id === '}') {
                $depth--;
                if ($depth === 0 && $id === '}') $start = $k + 1;
            } elseif ($depth === 0 && ($id === ';' || $id === T_CLOSE_TAG)) {
                $start = $k + 1;
                $last = $k;
            }
        }
        $end = count($sig);  // statement is $sig[$from .. $to)
        $from = $start;
        $trailingSemicolon = false;
        if ($from >= $end && $last !== null) {
            // ends with `;`: the statement before it
            $from = 0;
            $to = $last;
            $depth = 0;
            foreach ($sig as $k => [$i, $id, $text]) {
                if ($k >= $to) break;
                if ($id === '(' || $id === '[' || $id === '{' || $id === T_CURLY_OPEN || $id === T_DOLLAR_OPEN_CURLY_BRACES) $depth++;
                elseif ($id === ')' || $id === ']' || $id === '}') {
                    $depth--;
                    if ($depth === 0 && $id === '}') $from = $k + 1;
                } elseif ($depth === 0 && ($id === ';' || $id === T_CLOSE_TAG)) $from = $k + 1;
            }
            $trailingSemicolon = true;
        } else {
            $to = $end;
        }
        $plain = implode('', array_map(fn($t) => is_array($t) ? $t[1] : $t, array_slice($tokens, 1)));
        if ($from >= $to) return $plain;
        $first = $sig[$from][1];
        $isExpr = !in_array($first, self::NOT_EXPRESSIONS, true) && $first !== '{' && $first !== ';';
        if ($isExpr) {
            $depth = 0;
            for ($k = $from; $k < $to; $k++) {
                $id = $sig[$k][1];
                if ($id === '(' || $id === '[' || $id === '{') $depth++;
                elseif ($id === ')' || $id === ']' || $id === '}') $depth--;
                elseif ($depth === 0 && in_array($id, self::ASSIGN, true)) { $isExpr = false; break; }
            }
        }
        $out = $tokens;
        if ($isExpr) {
            $a = $sig[$from][0];
            $out[$a] = 'return (' . (is_array($out[$a]) ? $out[$a][1] : $out[$a]);
            $b = $sig[$to - 1][0];
            $out[$b] = (is_array($out[$b]) ? $out[$b][1] : $out[$b]) . ')';
        }
        $text = implode('', array_map(fn($t) => is_array($t) ? $t[1] : $t, array_slice($out, 1)));
        if (!$trailingSemicolon && !in_array($sig[$end - 1][1], ['}', ';', T_CLOSE_TAG, T_INLINE_HTML], true)) $text .= ';';
        if (self::parses($text)) {
            self::$isExpression = $isExpr;
            return $text;
        }
        return $plain;
    }

    /** Names this cell declares at top level that exist already (PHP would end the process). */
    private static function redeclared(string $code): ?string {
        $sig = self::significant(token_get_all("<?php " . $code));
        $depth = 0;
        $ns = '';
        foreach ($sig as $k => [$i, $id, $text]) {
            if ($id === '{' || $id === T_CURLY_OPEN || $id === T_DOLLAR_OPEN_CURLY_BRACES) $depth++;
            elseif ($id === '}') $depth--;
            if ($depth !== 0) continue;
            if ($id === T_NAMESPACE && isset($sig[$k + 1]) && in_array($sig[$k + 1][1], [T_STRING, T_NAME_QUALIFIED], true)) {
                $ns = $sig[$k + 1][2] . '\\';
            }
            $next = $sig[$k + 1] ?? null;
            if ($next === null || $next[1] !== T_STRING) continue;
            if ($id === T_FUNCTION) {
                if (($sig[$k + 2][1] ?? null) !== '(') continue;
                $name = $ns . $next[2];
                if (function_exists($name)) {
                    $where = isset(self::$declared[strtolower($name)]) ? ' (declared in cell ' . self::$declared[strtolower($name)] . ')' : '';
                    return "Cannot redeclare function $name()$where: PHP cannot replace a function; give it a new name or use a closure (\$$next[2] = function (...) {...})";
                }
            } elseif (in_array($id, [T_CLASS, T_INTERFACE, T_TRAIT, T_ENUM], true) && ($k === 0 || $sig[$k - 1][1] !== T_DOUBLE_COLON)) {
                $name = $ns . $next[2];
                if (class_exists($name, false) || interface_exists($name, false) || trait_exists($name, false)) {
                    $where = isset(self::$declared[strtolower($name)]) ? ' (declared in cell ' . self::$declared[strtolower($name)] . ')' : '';
                    return "Cannot declare $text $name$where: the name is already in use; PHP cannot replace a class, give it a new name";
                }
            }
        }
        return null;
    }

    private static function remember(int $cell, array $functionsBefore, array $classesBefore): void {
        foreach (array_diff(get_defined_functions()['user'], $functionsBefore) as $f) self::$declared[strtolower($f)] = $cell;
        foreach (array_diff(array_merge(get_declared_classes(), get_declared_interfaces(), get_declared_traits()), $classesBefore) as $c) {
            self::$declared[strtolower($c)] = $cell;
        }
    }

    public static function where(string $file): string {
        if (str_starts_with($file, 'cell://')) return '<cell ' . substr($file, 7) . '>';
        return $file;
    }

    public static function onWarning(int $errno, string $errstr, string $file = '', int $line = 0): bool {
        if (!(error_reporting() & $errno)) return false;
        $kind = match ($errno) {
            E_WARNING, E_USER_WARNING, E_CORE_WARNING, E_COMPILE_WARNING => 'Warning',
            E_NOTICE, E_USER_NOTICE => 'Notice',
            E_DEPRECATED, E_USER_DEPRECATED => 'Deprecated',
            default => 'Error',
        };
        fwrite(STDERR, "$kind: $errstr in " . self::where($file) . " on line $line\n");
        return true;
    }

    public static function onShutdown(): void {
        $e = error_get_last();
        if ($e && in_array($e['type'], [E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR, E_USER_ERROR], true)) {
            fwrite(STDERR, "Fatal error: {$e['message']} in " . self::where($e['file']) . " on line {$e['line']}\n");
        }
    }

    /** The source of the next cell as cell://N, or an error frame if it must not run. */
    public static function begin(string $code): ?string {
        $n = ++self::$cell;
        if (($why = self::redeclared(preg_replace('~^\s*<\?php\b~', '', $code))) !== null) {
            self::send(['type' => 'error', 'ename' => 'Error', 'evalue' => $why, 'traceback' => ["Error: $why"]]);
            return null;
        }
        CellStream::$sources[$n] = "<?php " . self::prepare($code);
        self::$before = [get_defined_functions()['user'], array_merge(get_declared_classes(), get_declared_interfaces(), get_declared_traits())];
        stdin(true);
        self::$interruptPending = false;
        self::$running = true;
        return "cell://$n";
    }
    private static array $before = [[], []];
    private static bool $isExpression = false;

    public static function end(): void {
        self::$running = false;
        while (ob_get_level() > 0) ob_end_flush();
        fflush(STDOUT);
        fflush(STDERR);
        unset(CellStream::$sources[self::$cell]);
        self::remember(self::$cell, ...self::$before);
    }

    public static function ok(mixed $value): void {
        self::end();
        // include returns 1 for a file without a return: no value unless the cell ended in an expression
        if ($value === null || ($value === 1 && !self::$isExpression)) {
            self::send(['type' => 'ok']);
        } else {
            self::send(['type' => 'ok', 'data' => ['text/plain' => self::repr($value)]]);
        }
    }

    public static function fail(\Throwable $e): void {
        self::end();
        if ($e instanceof Interrupted) {
            self::send(['type' => 'error', 'ename' => 'Interrupted', 'evalue' => 'the cell was interrupted',
                        'traceback' => ['Interrupted: the cell was interrupted (state is kept)']]);
            return;
        }
        $ename = $e instanceof InputError ? $e->ename : get_class($e);
        $tb = ["$ename: " . $e->getMessage(), '  at ' . self::where($e->getFile()) . ':' . $e->getLine()];
        foreach ($e->getTrace() as $i => $f) {
            if (isset($f['file']) && $f['file'] === __FILE__) break;
            $fn = (isset($f['class']) ? $f['class'] . $f['type'] : '') . ($f['function'] ?? '');
            if (in_array($fn, ['include', 'BackendAI\\Driver::ask', 'BackendAI\\StdinStream->stream_read'], true)) continue;
            $tb[] = "  #$i " . (isset($f['file']) ? self::where($f['file']) . ':' . ($f['line'] ?? '?') : '[internal]') . " $fn()";
        }
        $prev = $e->getPrevious();
        if ($prev) $tb[] = 'Caused by ' . get_class($prev) . ': ' . $prev->getMessage();
        self::send(['type' => 'error', 'ename' => $ename, 'evalue' => $e->getMessage(), 'traceback' => $tb]);
    }

    // ----- completion, is_complete, inspect ----------------------------------------------

    private const KEYWORDS = ['abstract', 'and', 'array', 'as', 'break', 'callable', 'case', 'catch', 'class', 'clone',
        'const', 'continue', 'declare', 'default', 'do', 'echo', 'else', 'elseif', 'empty', 'enum', 'extends', 'final',
        'finally', 'fn', 'for', 'foreach', 'function', 'global', 'if', 'implements', 'include', 'instanceof',
        'interface', 'isset', 'list', 'match', 'namespace', 'new', 'or', 'print', 'private', 'protected', 'public',
        'readonly', 'require', 'return', 'static', 'switch', 'throw', 'trait', 'try', 'unset', 'use', 'while', 'xor',
        'yield', 'true', 'false', 'null'];

    public static function complete(array $msg): void {
        $code = (string)$msg['code'];
        $pos = (int)$msg['cursor_pos'];
        $before = iconv_substr($code, 0, $pos, 'UTF-8');
        $names = [];
        $prefix = '';
        if (preg_match('~\$([A-Za-z_\x80-\xff][\w\x80-\xff]*)\s*(?:->|\?->)\s*(\w*)$~', $before, $m)) {
            $prefix = $m[2];
            $obj = $GLOBALS[$m[1]] ?? null;
            if (is_object($obj)) {
                $names = array_merge(get_class_methods($obj), array_keys(get_object_vars($obj)));
            }
        } elseif (preg_match('~([A-Za-z_\\\\][\w\\\\]*)::(\$?\w*)$~', $before, $m)) {
            $prefix = $m[2];
            $cls = $m[1];
            if (class_exists($cls) || interface_exists($cls) || enum_exists($cls)) {
                $r = new \ReflectionClass($cls);
                $names = array_merge(
                    array_map(fn($x) => $x->getName(), $r->getMethods(\ReflectionMethod::IS_STATIC)),
                    array_keys($r->getConstants()),
                    array_map(fn($x) => '$' . $x->getName(), $r->getProperties(\ReflectionProperty::IS_STATIC)),
                    ['class']);
            }
        } elseif (preg_match('~\$(\w*)$~', $before, $m)) {
            $prefix = '$' . $m[1];
            foreach (array_keys($GLOBALS) as $v) {
                if (!str_starts_with((string)$v, '__bai')) $names[] = '$' . $v;
            }
            $names[] = '$this';
        } else {
            preg_match('~[A-Za-z_\\\\][\w\\\\]*$~', $before, $m);
            $prefix = $m[0] ?? '';
            $fns = get_defined_functions();
            $names = array_merge($fns['internal'], $fns['user'], get_declared_classes(), get_declared_interfaces(),
                get_declared_traits(), array_keys(get_defined_constants()), self::KEYWORDS);
            $names = array_filter($names, fn($n) => !str_starts_with(strtolower($n), 'backendai\\'));
        }
        $lower = strtolower($prefix);
        $matches = [];
        foreach ($names as $n) {
            if (str_starts_with(strtolower($n), $lower)) $matches[$n] = true;
        }
        $matches = array_keys($matches);
        sort($matches, SORT_STRING | SORT_FLAG_CASE);
        self::send(['type' => 'complete', 'matches' => array_values($matches),
                    'cursor_start' => $pos - iconv_strlen($prefix, 'UTF-8'), 'cursor_end' => $pos]);
    }

    public static function isComplete(array $msg): void {
        $code = preg_replace('~^\s*<\?php\b~', '', (string)$msg['code']);
        $status = 'invalid';
        if (trim($code) === '' || self::parses($code) || self::parses($code . ';')) {
            $status = 'complete';
        } else {
            try {
                token_get_all("<?php " . $code, TOKEN_PARSE);
            } catch (\Throwable $e) {
                $m = $e->getMessage();
                $tokens = token_get_all("<?php " . $code);
                $lastTok = end($tokens);
                if (str_contains($m, 'unexpected end of file') || str_starts_with($m, 'Unclosed ')
                    || str_starts_with($m, 'Unterminated comment')
                    || (is_array($lastTok) && in_array($lastTok[0], [T_ENCAPSED_AND_WHITESPACE, T_START_HEREDOC], true))
                    || $lastTok === '"') {
                    $status = 'incomplete';
                }
            }
        }
        self::send(['type' => 'is_complete', 'status' => $status] + ($status === 'incomplete' ? ['indent' => '    '] : []));
    }

    public static function inspect(array $msg): void {
        $code = (string)$msg['code'];
        $pos = (int)$msg['cursor_pos'];
        $before = iconv_substr($code, 0, $pos, 'UTF-8');
        $after = (string)iconv_substr($code, $pos, iconv_strlen($code, 'UTF-8'), 'UTF-8');
        preg_match('~\$?[A-Za-z_\\\\][\w\\\\]*$~', $before, $a);
        preg_match('~^\w*~', $after, $b);
        $name = ($a[0] ?? '') . ($b[0] ?? '');
        $text = null;
        if ($name === '') {
            $text = null;
        } elseif ($name[0] === '$') {
            if (array_key_exists(substr($name, 1), $GLOBALS)) {
                $v = $GLOBALS[substr($name, 1)];
                $text = "$name: " . get_debug_type($v) . "\n" . self::repr($v);
            }
        } elseif (function_exists($name)) {
            $r = new \ReflectionFunction($name);
            $params = array_map(fn($p) => ($p->getType() ? $p->getType() . ' ' : '') . '$' . $p->getName()
                . ($p->isOptional() ? ' = ...' : ''), $r->getParameters());
            $text = $r->getName() . '(' . implode(', ', $params) . ')' . ($r->getReturnType() ? ': ' . $r->getReturnType() : '')
                . ($r->getDocComment() ? "\n" . $r->getDocComment() : '');
        } elseif (class_exists($name) || interface_exists($name)) {
            $r = new \ReflectionClass($name);
            $text = ($r->isInterface() ? 'interface ' : 'class ') . $r->getName() . "\nmethods: "
                . implode(', ', array_map(fn($m) => $m->getName(), $r->getMethods()));
        } elseif (defined($name)) {
            $text = "$name = " . self::repr(constant($name));
        }
        self::send($text === null ? ['type' => 'inspect', 'found' => false]
            : ['type' => 'inspect', 'found' => true, 'data' => ['text/plain' => $text]]);
    }

    /** Every verb but execute (which runs in the global scope below). */
    public static function handle(array $msg): void {
        match ($msg['op'] ?? '') {
            'complete' => self::complete($msg),
            'is_complete' => self::isComplete($msg),
            'inspect' => self::inspect($msg),
            'input_reply' => null,  // the answer to an input request of a cell that was interrupted
            default => self::send(['type' => 'error', 'ename' => 'DriverError',
                                   'evalue' => 'unknown op ' . ($msg['op'] ?? ''), 'traceback' => []]),
        };
    }
}

} // namespace BackendAI

namespace {

/** Ask the frontend for a line (an input_request). */
function input(string $prompt = '', bool $password = false): string {
    return \BackendAI\Driver::ask($prompt, $password);
}

if (!function_exists('readline')) {
    /** readline() of the cell: an input_request; false at end of input, as PHP's own. */
    function readline(?string $prompt = null): string|false {
        try {
            return \BackendAI\Driver::ask((string)$prompt, false);
        } catch (\BackendAI\InputError $e) {
            if ($e->ename === 'EOFError') return false;
            throw $e;
        }
    }
}

/** display('text/html', '<b>x</b>') or display(['text/html' => ..., 'text/plain' => ...]). */
function display(string|array $mime, mixed $data = null, array $metadata = []): void {
    \BackendAI\Driver::display(is_array($mime) ? $mime : [$mime => $data], $metadata);
}
function display_html(string $html): void { display('text/html', $html); }
function display_svg(string $svg): void { display('image/svg+xml', $svg); }
/** Raw PNG bytes (or base64). */
function display_png(string $png): void { display('image/png', $png); }
function display_jpeg(string $jpeg): void { display('image/jpeg', $jpeg); }
function display_markdown(string $md): void { display('text/markdown', $md); }

\BackendAI\Driver::start();
\BackendAI\Driver::send(['type' => 'ready', 'version' => PHP_VERSION]);

// The loop runs in the global scope, so that what a cell includes shares its variables.
while (true) {
    try {
        $__bai = \BackendAI\Driver::receive();
        if ($__bai === null) break;
        if (($__bai['op'] ?? '') !== 'execute') {
            \BackendAI\Driver::handle($__bai);
            continue;
        }
        $__bai = \BackendAI\Driver::begin((string)$__bai['code']);
        if ($__bai === null) continue;
        try {
            \BackendAI\Driver::ok(include $__bai);
        } catch (\Throwable $__bai) {
            \BackendAI\Driver::fail($__bai);
        }
    } catch (\Throwable $__bai) {
        // an interrupt that arrived just as a cell ended, or the driver's own failure
        if (!($__bai instanceof \BackendAI\Interrupted)) {
            fwrite(STDERR, "[php driver] " . $__bai . "\n");
        }
    }
}

} // namespace
