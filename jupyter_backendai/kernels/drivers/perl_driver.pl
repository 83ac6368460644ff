# SPDX-License-Identifier: LGPL-3.0-or-later
# The Perl driver of the Backend.AI wrapper kernel (jupyter_backendai/kernels).
#
# Cells are string-eval'd in package main, one after another in this one interpreter, so
# packages, subs and package variables carry over. A string eval is its own lexical scope,
# though, so a top-level `my $x` would vanish with its cell: top-level `my` declarations are
# rewritten to `our` (same name, now a package variable), and every later cell starts with an
# `our (...)` of all of them, so `use strict` cells keep seeing them too. Only the top level is
# rewritten: `my` inside blocks and subs keeps its meaning.
#
# A cell whose last statement has no closing `;` shows its value (Data::Dumper, terse), as in
# MATLAB or a Python cell ending without `;`. The wrapper talks to this process over framed
# JSON (4-byte big-endian length + UTF-8 JSON) on two file descriptors named in the
# environment; the program's own STDOUT and STDERR are pipes the wrapper streams to the cell.

use strict;
use warnings;
no warnings 'once';

package BackendAI::Error {
    sub new { my ($class, %a) = @_; return bless {%a}, $class }
    sub ename { $_[0]{ename} }
    sub message { $_[0]{message} }
}

package BackendAI {
    use JSON::PP ();
    use MIME::Base64 ();
    use Data::Dumper ();

    my $json = JSON::PP->new->utf8->canonical->allow_nonref->allow_unknown;
    our ($CMD, $EVT, $INBUF, $RUNNING, $DISPLAY_SEQ) = (undef, undef, '', 0, 0);

    open($CMD, '<&=', $ENV{BACKENDAI_DRIVER_CMD_FD} // 3) or die "command fd: $!";
    open($EVT, '>&=', $ENV{BACKENDAI_DRIVER_EVENT_FD} // 4) or die "event fd: $!";
    delete @ENV{qw(BACKENDAI_DRIVER_CMD_FD BACKENDAI_DRIVER_EVENT_FD)};
    binmode($CMD); binmode($EVT);
    { my $old = select($EVT); $| = 1; select($old); }
    # Programs a cell starts must not inherit the channel.
    use Fcntl ();
    for my $fh ($CMD, $EVT) {
        my $flags = fcntl($fh, Fcntl::F_GETFD(), 0);
        fcntl($fh, Fcntl::F_SETFD(), $flags | Fcntl::FD_CLOEXEC()) if defined $flags;
    }

    sub send_msg {
        my ($msg) = @_;
        my $body = $json->encode($msg);
        print {$EVT} pack('N', length $body), $body;
    }

    # The buffer is a package variable: an interrupt while waiting never cuts a frame in half.
    sub read_frame {
        while (1) {
            if (length($INBUF) >= 4) {
                my $n = unpack('N', $INBUF);
                if (length($INBUF) >= 4 + $n) {
                    my $body = substr($INBUF, 4, $n);
                    substr($INBUF, 0, 4 + $n) = '';
                    return $json->decode($body);
                }
            }
            my $got = sysread($CMD, my $chunk, 65536);
            if (!defined $got) { next if $!{EINTR}; die "command channel: $!" }
            exit 0 if $got == 0;
            $INBUF .= $chunk;
        }
    }

    # input_request to the frontend; undef at end of input.
    sub input {
        my ($prompt, %opt) = @_;
        die BackendAI::Error->new(ename => 'InputError', message => 'input() only works while a cell runs')
            unless $RUNNING;
        STDOUT->flush; STDERR->flush;
        send_msg({type => 'input', prompt => $prompt // '', password => $opt{password} ? JSON::PP::true : JSON::PP::false});
        while (1) {
            my $reply = read_frame();
            next unless ($reply->{op} // '') eq 'input_reply';
            return $reply->{value} // '' unless defined $reply->{error};
            return undef if ($reply->{ename} // '') eq 'EOFError';
            die BackendAI::Error->new(ename => $reply->{ename} // 'InputError', message => $reply->{error});
        }
    }

    my %BINARY = map { $_ => 1 } qw(image/png image/jpeg image/gif application/pdf);

    sub encode_data {
        my ($mime, $data) = @_;
        return $data if $mime =~ /json$/ && ref $data;
        $data = "$data";
        if ($BINARY{$mime}) {
            return $data =~ s/\s+//gr if $data =~ m{\A[A-Za-z0-9+/=\s]+\z};   # already base64
            return MIME::Base64::encode_base64($data, '');
        }
        utf8::decode($data) unless utf8::is_utf8($data);
        return $data;
    }

    # display($mime => $data, ...): one display_data bundle, shown where the output has got to.
    sub display {
        my %bundle;
        while (my ($mime, $data) = splice(@_, 0, 2)) { $bundle{$mime} = encode_data($mime, $data) }
        $bundle{'text/plain'} //= '<' . (sort keys %bundle)[0] . ' output>';
        STDOUT->flush; STDERR->flush;
        my $seq = ++$DISPLAY_SEQ;
        syswrite(STDOUT, "\e]5150;bai-display;$seq\a");
        send_msg({type => 'display', data => \%bundle, metadata => {}, sync => $seq});
        return;
    }

    sub dump_value {
        my @values = @_;
        local $Data::Dumper::Terse = 1;
        local $Data::Dumper::Indent = 0;
        local $Data::Dumper::Sortkeys = 1;
        local $Data::Dumper::Useqq = 1;
        my @parts = map { my $d = Data::Dumper::Dumper($_); $d =~ s/\A'(-?\d+(?:\.\d+)?)'\z/$1/; $d } @values;
        return @parts == 1 ? $parts[0] : '(' . join(', ', @parts) . ')';
    }
}

# What cells call.
package main {
    sub input { BackendAI::input(@_) }
    sub display { BackendAI::display(@_) }
    sub display_html { BackendAI::display('text/html' => $_[0]) }
    sub display_svg { BackendAI::display('image/svg+xml' => $_[0]) }
    sub display_png { BackendAI::display('image/png' => $_[0]) }
    sub display_jpeg { BackendAI::display('image/jpeg' => $_[0]) }
    sub display_markdown { BackendAI::display('text/markdown' => $_[0]) }
}

# STDIN while the kernel runs: each line read becomes an input request; an empty answer is the
# end of input (so `while (<STDIN>)` loops can finish).
package BackendAI::Stdin {
    sub TIEHANDLE { my $c = shift; return bless {}, $c }
    sub READLINE {
        if (wantarray) {
            my @lines;
            while (defined(my $l = _line())) { push @lines, $l }
            return @lines;
        }
        return _line();
    }
    sub _line {
        my $v = BackendAI::input('');
        return undef if !defined $v || $v eq '';
        return "$v\n";
    }
    sub EOF { 0 }
    sub CLOSE { 1 }
    sub BINMODE { 1 }
    sub FILENO { 0 }
}

package BackendAI::Driver {
    our ($CELL, @DECLARED) = (0);
    my %SEEN;

    # `my` at brace depth 0 (outside strings, comments and POD) becomes `our`; the names are
    # remembered for later cells.
    sub hoist_my {
        my ($code) = @_;
        my ($out, $depth) = ('', 0);
        pos($code) = 0;
        while (pos($code) < length $code) {
            if ($code =~ /\G(#[^\n]*)/gc
                || $code =~ /\G(^=[a-zA-Z].*?^=cut\b[^\n]*)/gcms
                || $code =~ /\G("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')/gcs
                || $code =~ /\G(\$#\w*|[\$\@\%&]\w+)/gc) {   # $s and @y are variables, not s/// and y///
                $out .= $1;
                next;
            }
            if ($code =~ /\G\b(q[qwr]?|m|s|tr|y)(\s*)(?=[^\w\s=,;)])/gc) {
                $out .= $1 . $2 . quoted(\$code, $1);
                next;
            }
            if ($code =~ /\G([{])/gc) { $depth++; $out .= $1; next }
            if ($code =~ /\G([}])/gc) { $depth-- if $depth; $out .= $1; next }
            if ($depth == 0 && $code =~ /\G\bmy(\s*)(?=[\$\@\%(])/gc) {
                $out .= "our$1";
                my $rest = substr($code, pos($code));
                my @names = $rest =~ /\A\(([^)]*)\)/ ? ($1 =~ /([\$\@\%]\w+)/g) : ($rest =~ /\A([\$\@\%]\w+)/);
                for (@names) { push @DECLARED, $_ unless $SEEN{$_}++ }
                next;
            }
            $code =~ /\G(\w+|\s+|.)/gcs and $out .= $1;
        }
        return $out;
    }

    # The body of q(...), qq{...}, m/../, s{..}{..}, tr/../../ from its delimiter on, brackets
    # nesting; pos() ends after it.
    sub quoted {
        my ($code, $op) = @_;
        my %pair = ('(' => ')', '[' => ']', '{' => '}', '<' => '>');
        my $start = pos($$code);
        my $i = $start;
        my $parts = ($op eq 's' || $op eq 'tr' || $op eq 'y') ? 2 : 1;
        my $open = substr($$code, $i, 1);
        for my $part (1 .. $parts) {
            my $close = $pair{$open} // $open;
            my $depth = 1;
            $i++;
            while ($i < length $$code && $depth) {
                my $c = substr($$code, $i, 1);
                if ($c eq '\\') { $i += 2; next }
                $depth++ if $c eq $open && $open ne $close;
                $depth-- if $c eq $close;
                $i++;
            }
            if ($part < $parts && $pair{$open}) {   # s{..}{..}: the second part has its own brackets
                $i++ while $i < length $$code && substr($$code, $i, 1) =~ /\s/;
                $open = substr($$code, $i, 1);
            } elsif ($part < $parts) {
                $i--;   # s/a/b/: the middle delimiter closes one part and opens the next
            }
        }
        pos($$code) = $i;
        return substr($$code, $start, $i - $start);
    }

    sub prelude {
        return @DECLARED ? 'our (' . join(', ', @DECLARED) . ');' : '';
    }

    # The cell's value is shown when its last statement is not closed by `;` (or `}`), and is
    # not one that is done for its effect (print, use, a loop...).
    sub shows_value {
        my ($code) = @_;
        (my $c = $code) =~ s/#[^\n]*//g;
        $c =~ s/\s+\z//;
        return 0 if !length($c) || $c =~ /[;}]\z/;
        my ($last) = $c =~ /([^;]*)\z/;
        return $last !~ /\A\s*(?:print|printf|say|warn|die|use|no|require|package|sub\s+\w|if|unless|for|foreach|while|until)\b/;
    }

    sub error_reply {
        my ($err) = @_;
        if (ref $err && eval { $err->isa('BackendAI::Interrupted') }) {
            my $t = 'the cell was interrupted (state is kept)';
            return {type => 'error', ename => 'Interrupted', evalue => $t, traceback => ["Interrupted: $t"]};
        }
        my ($ename, $evalue);
        if (ref $err && eval { $err->isa('BackendAI::Error') }) {
            ($ename, $evalue) = ($err->ename, $err->message);
        } elsif (ref $err) {
            ($ename, $evalue) = (ref $err, eval { "$err" } // ref $err);
        } else {
            $evalue = "$err";
            $ename = $evalue =~ /syntax error|Missing right curly|Can't find string terminator|Unmatched|Global symbol/
                ? 'SyntaxError' : 'Died';
        }
        $evalue =~ s/\s+\z//;
        utf8::decode($evalue) unless utf8::is_utf8($evalue);
        return {type => 'error', ename => $ename, evalue => $evalue, traceback => [split /\n/, "$ename: $evalue"]};
    }

    sub execute {
        my ($msg) = @_;
        my $code = $msg->{code} // '';
        $CELL++;
        my $show = shows_value($code);
        my $body = hoist_my($code);
        my $src = prelude() . "\n#line 1 \"cell[$CELL]\"\n$body\n;";
        my (@values, $ok);
        {
            local $BackendAI::RUNNING = 1;
            local $@;
            @values = eval "package main; no strict; no warnings; $src";
            $ok = !$@;
            $BackendAI::Driver::ERR = $@;
        }
        STDOUT->flush; STDERR->flush;
        return BackendAI::send_msg(error_reply($BackendAI::Driver::ERR)) unless $ok;
        if ($show && @values) {
            return BackendAI::send_msg({type => 'ok', data => {'text/plain' => BackendAI::dump_value(@values)}});
        }
        BackendAI::send_msg({type => 'ok'});
    }

    # Trial compile inside a sub that never runs: unbalanced input means "more to come".
    sub is_complete {
        my ($msg) = @_;
        my $code = $msg->{code} // '';
        local $@;
        # Compiled, never run: `return` leaves the eval first (BEGIN and `use` do run).
        eval "package main; no strict; no warnings; return;\n$code";
        my $err = $@;
        my $status = !$err ? 'complete'
            : $err =~ /Missing right curly|Can't find string terminator|at EOF/ ? 'incomplete' : 'invalid';
        BackendAI::send_msg({type => 'is_complete', status => $status, $status eq 'incomplete' ? (indent => '    ') : ()});
    }

    my @KEYWORDS = qw(my our local sub package use no require if elsif else unless while until for foreach
        do last next redo return and or not eq ne lt gt le ge cmp print printf say die warn eval defined
        undef ref scalar exists delete keys values each push pop shift unshift splice join split map grep
        sort reverse open close binmode chomp chop chr ord lc uc lcfirst ucfirst length substr index rindex
        sprintf abs int sqrt exp log sin cos atan2 rand srand time localtime gmtime sleep wantarray bless);

    sub names_in {
        my ($stash_name, $sigil, $prefix) = @_;
        no strict 'refs';
        my $stash = \%{"${stash_name}::"};
        my @out;
        for my $name (keys %$stash) {
            next unless index($name, $prefix) == 0 && $name =~ /\A\w+(::)?\z/;
            my $full = "${stash_name}::$name";
            if ($name =~ /::\z/) { push @out, $name if $sigil eq ''; next }
            if ($sigil eq '$') { push @out, $name if defined ${$full} }
            elsif ($sigil eq '@') { push @out, $name if @{$full} }
            elsif ($sigil eq '%') { push @out, $name if %{$full} }
            else { push @out, $name if defined &{$full} }
        }
        return @out;
    }

    sub complete {
        my ($msg) = @_;
        my $code = $msg->{code} // '';
        my $pos = $msg->{cursor_pos} // length $code;
        my $before = substr($code, 0, $pos);
        my ($token) = $before =~ /([\$\@\%&]?[\w:]*)\z/;
        my ($sigil, $path) = $token =~ /\A([\$\@\%&]?)(.*)\z/;
        $sigil = '' if $sigil eq '&';
        my ($pkg, $prefix) = $path =~ /\A(.*)::(\w*)\z/ ? ($1 || 'main', $2) : ('main', $path);
        my @names = names_in($pkg, $sigil, $prefix);
        push @names, grep { index($_, $prefix) == 0 } @KEYWORDS if $sigil eq '' && $pkg eq 'main';
        if ($sigil ne '' && $pkg eq 'main') {   # declared but not yet set
            push @names, map { substr($_, 1) } grep { substr($_, 0, 1) eq $sigil && index(substr($_, 1), $prefix) == 0 } @DECLARED;
        }
        my %u = map { $_ => 1 } @names;
        my $start = $pos - length $prefix;
        BackendAI::send_msg({type => 'complete', matches => [sort keys %u], cursor_start => $start, cursor_end => $pos});
    }

    sub inspect {
        my ($msg) = @_;
        my $code = $msg->{code} // '';
        my $pos = $msg->{cursor_pos} // length $code;
        my ($expr) = (substr($code, 0, $pos) . (substr($code, $pos) =~ /\A(\w*)/)[0]) =~ /([\$\@\%]?[\w:]+)\z/;
        my $text;
        if (defined $expr) {
            no strict 'refs';
            my ($sigil, $name) = $expr =~ /\A([\$\@\%]?)(.*)\z/;
            my $full = $name =~ /::/ ? $name : "main::$name";
            if ($sigil eq '$' && defined ${$full}) { $text = "$expr = " . BackendAI::dump_value(${$full}) }
            elsif ($sigil eq '@' && @{$full}) { $text = "$expr = " . BackendAI::dump_value([@{$full}]) }
            elsif ($sigil eq '%' && %{$full}) { $text = "$expr = " . BackendAI::dump_value({%{$full}}) }
            elsif ($sigil eq '' && defined &{$full}) { $text = "$name: a sub in package " . ($full =~ s/::\w+\z//r) }
            elsif ($sigil eq '' && %{"${name}::"}) { $text = "$name: a package" }
        }
        BackendAI::send_msg($text ? {type => 'inspect', found => JSON::PP::true, data => {'text/plain' => $text}}
                                  : {type => 'inspect', found => JSON::PP::false});
    }

    my %VERBS = (execute => \&execute, complete => \&complete, is_complete => \&is_complete, inspect => \&inspect);
    my %EMPTY = (complete => {type => 'complete', matches => [], cursor_start => 0, cursor_end => 0},
                 is_complete => {type => 'is_complete', status => 'unknown'},
                 inspect => {type => 'inspect', found => JSON::PP::false});

    sub main {
        $| = 1;
        { my $old = select(STDERR); $| = 1; select($old); }
        tie *STDIN, 'BackendAI::Stdin';
        $0 = 'perl';
        # SIGINT stops the running cell only; between cells it is ignored.
        $SIG{INT} = sub { die bless({}, 'BackendAI::Interrupted') if $BackendAI::RUNNING };
        BackendAI::send_msg({type => 'ready', version => sprintf('%vd', $^V)});
        while (1) {
            my $msg = eval { BackendAI::read_frame() };
            next unless $msg;
            my $op = $msg->{op} // '';
            next if $op eq 'input_reply';   # a late answer to an input() that was interrupted
            my $verb = $VERBS{$op};
            unless ($verb) {
                BackendAI::send_msg({type => 'error', ename => 'DriverError', evalue => "unknown op $op", traceback => []});
                next;
            }
            eval { $verb->($msg); 1 } or do {
                my $e = $@;
                print STDERR "backendai perl driver: $op: $e";
                BackendAI::send_msg($EMPTY{$op} // {type => 'error', ename => 'DriverError', evalue => "$e", traceback => []});
            };
        }
    }
}

BackendAI::Driver::main();
