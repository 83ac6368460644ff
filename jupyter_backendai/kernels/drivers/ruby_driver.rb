# SPDX-License-Identifier: LGPL-3.0-or-later
# The Ruby driver of the Backend.AI wrapper kernel (jupyter_backendai/kernels).
#
# Cells are eval'd against one Binding made once at the top level, so local variables, methods,
# classes and constants carry over between cells. The wrapper talks to this process over framed
# JSON (4-byte big-endian length + UTF-8 JSON) on two file descriptors named in the environment;
# the program's own stdout and stderr stay ordinary pipes that the wrapper streams to the cell.
#
# Nothing here may define a top-level local variable: the user's binding would see it.

require 'json'
require 'ripper'
require 'timeout'

module BackendAI
  # An error whose Jupyter name is not a Ruby class name (input() refused by the frontend...).
  class KernelError < StandardError
    attr_reader :ename

    def initialize(ename, message)
      super(message)
      @ename = ename
    end
  end

  # The framed channel to the wrapper.
  module Channel
    @cmd = IO.for_fd(Integer(ENV.delete('BACKENDAI_DRIVER_CMD_FD') || 3), 'rb', autoclose: false)
    @evt = IO.for_fd(Integer(ENV.delete('BACKENDAI_DRIVER_EVENT_FD') || 4), 'wb', autoclose: false)
    # Programs the cell starts must not hold the channel open (the wrapper sees our exit as EOF).
    @cmd.close_on_exec = true
    @evt.close_on_exec = true
    @evt.sync = true
    @inbuf = String.new(encoding: Encoding::BINARY)

    def self.send_msg(msg)
      body = JSON.generate(msg).b
      @evt.write([body.bytesize].pack('N'), body)
    end

    # The buffer outlives an Interrupt raised while we wait in input(), so a frame is never
    # cut in half.
    def self.read_frame
      loop do
        if @inbuf.bytesize >= 4
          n = @inbuf.unpack1('N')
          if @inbuf.bytesize >= 4 + n
            body = @inbuf.byteslice(4, n)
            @inbuf = @inbuf.byteslice(4 + n..-1)
            return JSON.parse(body.force_encoding(Encoding::UTF_8))
          end
        end
        begin
          @inbuf << @cmd.readpartial(65_536)
        rescue EOFError
          exit!(0)
        end
      end
    end
  end

  def self.text(str)
    s = str.to_s.dup
    s.force_encoding(Encoding::UTF_8) unless s.encoding == Encoding::UTF_8
    s.valid_encoding? ? s : s.scrub
  end

  # ----- what a cell sees ---------------------------------------------------------------------

  @running = false
  class << self
    attr_accessor :running
  end

  # Ask the frontend for a line (input_request); nil at end of input.
  def self.input(prompt = '', password: false)
    raise KernelError.new('InputError', 'input() only works while a cell runs') unless running

    $stdout.flush
    Channel.send_msg({ type: 'input', prompt: text(prompt), password: password ? true : false })
    loop do
      reply = Channel.read_frame
      next unless reply['op'] == 'input_reply'
      return reply['value'].to_s unless reply['error']
      return nil if reply['ename'] == 'EOFError'

      raise KernelError.new(reply['ename'] || 'InputError', reply['error'])
    end
  end

  # $stdin while the kernel runs: every read becomes an input_request. Kernel#gets reads it
  # through ARGF, so plain `gets` works too.
  class Stdin
    def gets(sep = $/, _limit = nil, chomp: false)
      line = BackendAI.input('')
      return nil if line.nil?

      chomp ? line : "#{line}#{sep.is_a?(String) ? sep : "\n"}"
    end

    def readline(*args, **kw)
      gets(*args, **kw) or raise EOFError, 'end of file reached'
    end

    def each_line(*args, **kw)
      return enum_for(:each_line, *args, **kw) unless block_given?

      while (line = gets(*args, **kw))
        yield line
      end
      self
    end

    def readlines(*args, **kw)
      each_line(*args, **kw).to_a
    end

    # All of stdin: lines until the frontend answers end of input (e.g. an empty answer
    # does not end it; EOF does).
    def read(length = nil, outbuf = nil)
      data = length ? (gets || '')[0, length] : readlines.join
      outbuf ? outbuf.replace(data) : data
    end

    def getc
      @pending = gets if @pending.nil? || @pending.empty?
      return nil if @pending.nil?

      c = @pending[0]
      @pending = @pending[1..]
      c
    end

    def getpass(prompt = '')
      BackendAI.input(prompt, password: true)
    end

    def eof?
      false
    end

    def tty?
      false
    end
    alias isatty tty?

    def sync
      true
    end

    def sync=(_value); end

    def fileno
      0
    end

    def external_encoding
      Encoding::UTF_8
    end

    def set_encoding(*) = self

    def close; end

    def inspect
      '#<BackendAI::Stdin (reads become input requests)>'
    end
  end

  BINARY_MIMES = %w[image/png image/jpeg image/gif application/pdf].freeze
  @display_seq = 0

  # Send a display_data bundle: display(mime, data) or display({mime => data, ...}).
  def self.display(mime, data = nil, metadata: {})
    bundle = {}
    if mime.is_a?(Hash) && data.nil?
      mime.each { |k, v| bundle[k.to_s] = encode_data(k.to_s, v) }
    else
      bundle[mime.to_s] = encode_data(mime.to_s, data)
    end
    bundle['text/plain'] ||= "<#{bundle.keys.first} output>"
    $stdout.flush
    $stderr.flush
    # The marker goes into fd 1 with the program's own output, so the wrapper shows the
    # display exactly there among the lines around it.
    seq = (@display_seq += 1)
    STDOUT.write("\e]5150;bai-display;#{seq}\a")
    STDOUT.flush
    Channel.send_msg({ type: 'display', data: bundle, metadata: metadata, sync: seq })
    nil
  end

  def self.encode_data(mime, data)
    data = data.read if data.respond_to?(:read)
    if BINARY_MIMES.include?(mime)
      s = data.to_s
      # Already base64 text, or raw bytes to encode.
      return s.gsub(/\s+/, '') if s.match?(%r{\A[A-Za-z0-9+/=\s]*\z}) && !s.empty?

      return [s.b].pack('m0')
    end
    return data if mime.end_with?('json') && (data.is_a?(Hash) || data.is_a?(Array))

    text(data)
  end

  def self.html(s) = display('text/html', s.to_s)
  def self.svg(s) = display('image/svg+xml', s.to_s)
  def self.png(bytes) = display('image/png', bytes)
  def self.jpeg(bytes) = display('image/jpeg', bytes)
  def self.markdown(s) = display('text/markdown', s.to_s)
  def self.latex(s) = display('text/latex', s.to_s)
  def self.json(obj) = display({ 'application/json' => obj, 'text/plain' => obj.inspect })

  # `display(mime, data)` anywhere and `display.html(...)` at the top level, without taking
  # Object#display (print self) away from other calls.
  module DisplayHook
    def display(*args, **kw)
      first = args.first
      if args.empty? && kw.empty? && equal?(TOPLEVEL_BINDING.receiver)
        BackendAI
      elsif (first.is_a?(String) && first.match?(%r{\A[\w.+-]+/[\w.+-]+\z})) || (first.is_a?(Hash) && args.size == 1)
        BackendAI.display(*args, **kw)
      else
        super
      end
    end
  end
  Object.prepend(DisplayHook)

  # ----- the driver ---------------------------------------------------------------------------

  module Driver
    DRIVER_FILE = File.expand_path(__FILE__)
    @binding = TOPLEVEL_BINDING.eval('binding')
    @cell = 0

    class << self
      attr_reader :binding
    end

    def self.user_frames(exc)
      frames = exc.backtrace || []
      cut = frames.index { |f| f.start_with?(DRIVER_FILE) }
      cut ? frames[0...cut] : frames
    end

    def self.error_msg(exc)
      if exc.is_a?(Interrupt)
        text = 'the cell was interrupted (state is kept)'
        return { type: 'error', ename: 'Interrupted', evalue: text,
                 traceback: ["Interrupted: #{text}", *user_frames(exc).map { |f| "  #{f}" }] }
      end
      ename = exc.respond_to?(:ename) ? exc.ename : (exc.class.name || exc.class.inspect)
      evalue = BackendAI.text(exc.message)
      lines = ["#{ename}: #{evalue}", *user_frames(exc).map { |f| "  #{f}" }]
      { type: 'error', ename: BackendAI.text(ename), evalue: evalue, traceback: lines.map { |l| BackendAI.text(l) } }
    end

    def self.safe_inspect(value)
      s = begin
        value.inspect
      rescue Exception # rubocop:disable Lint/RescueException
        Object.instance_method(:inspect).bind_call(value)
      end
      s = BackendAI.text(s)
      s.length > 1_000_000 ? "#{s[0, 1_000_000]}…" : s
    end

    # IRB shows every value; a notebook hides the nil of `puts x` (and of a cell ending in
    # `;`), but shows a nil the user asked for by name.
    def self.show_value?(code, value)
      stripped = code.rstrip
      return false if stripped.empty? || stripped.end_with?(';')
      return true unless value.nil?

      stmts = Ripper.sexp(code)&.dig(1)
      last = stmts&.reject { |s| s.is_a?(Array) && s.first == :void_stmt }&.last
      return false unless last.is_a?(Array)
      return true if last.first == :var_ref

      last.first == :vcall && @binding.local_variable_defined?(last.dig(1, 1).to_sym)
    rescue StandardError
      false
    end

    def self.result_bundle(value)
      data = { 'text/plain' => safe_inspect(value) }
      { to_html: 'text/html', to_svg: 'image/svg+xml', to_png: 'image/png', to_markdown: 'text/markdown' }.each do |meth, mime|
        next unless value.respond_to?(meth) && !value.is_a?(String)

        begin
          data[mime] = BackendAI.encode_data(mime, value.public_send(meth))
        rescue StandardError
          nil
        end
      end
      data
    end

    def self.flush_output
      [$stdout, $stderr, STDOUT, STDERR].uniq.each do |io|
        io.flush if io.respond_to?(:flush)
      rescue StandardError
        nil
      end
    end

    def self.execute(msg)
      @cell += 1
      code = msg['code'].to_s
      outcome = nil
      begin
        BackendAI.running = true
        value = @binding.eval(code, "<cell #{@cell}>", 1)
        BackendAI.running = false
        outcome = show_value?(code, value) ? { type: 'ok', data: result_bundle(value) } : { type: 'ok' }
      rescue Exception => e # rubocop:disable Lint/RescueException
        BackendAI.running = false
        outcome = error_msg(e)
      end
      flush_output
      Channel.send_msg(outcome)
    end

    # Ruby's own parser decides: an error at the end of the input means "more to come".
    class Probe < Ripper
      attr_reader :errors

      def initialize(*)
        super
        @errors = []
      end

      def compile_error(msg)
        @errors << msg
      end

      def on_parse_error(msg)
        @errors << msg
      end
    end

    OPEN_END = /unexpected end-of-input|meets end of file|anywhere before EOF/.freeze

    def self.is_complete(msg)
      code = msg['code'].to_s
      probe = Probe.new(code)
      probe.parse
      status = if !probe.error? then 'complete'
               elsif probe.errors.first.to_s.match?(OPEN_END) || code.rstrip.end_with?('\\') then 'incomplete'
               else 'invalid'
               end
      reply = { type: 'is_complete', status: status }
      reply[:indent] = '  ' if status == 'incomplete'
      Channel.send_msg(reply)
    end

    # Where IRB splits words: the completed token starts after the last of these.
    BREAK = " \t\n`><=;|&{(".chars.freeze
    KEYWORDS = %w[BEGIN END alias and begin break case class def defined? do else elsif end ensure false for if in
                  module next nil not or redo rescue retry return self super then true undef unless until when
                  while yield __FILE__ __LINE__ __method__].freeze

    def self.irb_completion
      return @irb if defined?(@irb)

      @irb = begin
        require 'irb'
        require 'irb/completion'
        IRB::InputCompletor.respond_to?(:retrieve_completion_data) ? IRB::InputCompletor : nil
      rescue LoadError, StandardError
        nil
      end
    end

    # Without IRB: names in the binding for a word, a receiver's methods after `recv.`.
    def self.fallback_candidates(token)
      if (m = token.match(/\A(.+)(\.|::)([^.:]*)\z/))
        recv = @binding.eval(m[1])
        names = m[2] == '::' && recv.is_a?(Module) ? recv.constants + recv.methods : recv.methods
        names.map(&:to_s).select { |n| n.start_with?(m[3]) }.map { |n| "#{m[1]}#{m[2]}#{n}" }
      else
        names = @binding.local_variables + @binding.receiver.methods + @binding.receiver.private_methods +
                Object.constants
        (names.map(&:to_s) + KEYWORDS).select { |n| n.start_with?(token) }
      end
    rescue StandardError, ScriptError
      []
    end

    def self.complete(msg)
      code = msg['code'].to_s
      pos = (msg['cursor_pos'] || code.length).to_i
      before = code[0, pos].to_s
      start = before.length
      start -= 1 while start.positive? && !BREAK.include?(before[start - 1])
      token = before[start..]
      matches = []
      unless token.empty?
        begin
          Timeout.timeout(3) do
            irb = irb_completion
            matches = irb ? Array(irb.retrieve_completion_data(token, bind: @binding)) : fallback_candidates(token)
          end
        rescue Exception # rubocop:disable Lint/RescueException
          matches = []
        end
        matches = matches.compact.map(&:to_s).uniq.sort
      end
      # Offer the method names after `recv.` (as a notebook shows them), not the whole token.
      if (m = token.match(/\A(.*(?:\.|::))[^.:]*\z/)) && !matches.empty? && matches.all? { |s| s.start_with?(m[1]) }
        start += m[1].length
        matches = matches.map { |s| s[m[1].length..] }
      end
      Channel.send_msg({ type: 'complete', matches: matches.map { |s| BackendAI.text(s) },
                         cursor_start: start, cursor_end: pos })
    end

    def self.inspect_value(msg)
      code = msg['code'].to_s
      pos = (msg['cursor_pos'] || code.length).to_i
      expr = code[0, pos][/[A-Za-z_@$][\w:.]*[?!]?\z/].to_s + code[pos..].to_s[/\A\w*[?!]?/].to_s
      expr = expr.sub(/[.:]+\z/, '')
      return Channel.send_msg({ type: 'inspect', found: false }) if expr.empty?

      text = Timeout.timeout(3) { describe(expr) }
      Channel.send_msg(text ? { type: 'inspect', found: true, data: { 'text/plain' => BackendAI.text(text) } }
                            : { type: 'inspect', found: false })
    rescue Exception # rubocop:disable Lint/RescueException
      Channel.send_msg({ type: 'inspect', found: false })
    end

    # Variables and constants by value; a bare method name by its signature and location.
    def self.describe(expr)
      if expr.match?(/\A[a-z_]\w*[?!]?\z/) && !@binding.local_variable_defined?(expr.to_sym)
        recv = @binding.receiver
        meth = begin
          recv.method(expr)
        rescue NameError
          return nil
        end
        return "#{expr}: method of #{meth.owner}\nparameters: #{meth.parameters.inspect}\n" \
               "defined at: #{meth.source_location&.join(':') || '(native)'}"
      end
      value = @binding.eval(expr)
      lines = ["#{expr}: #{value.class}", safe_inspect(value)[0, 4000]]
      if value.is_a?(Module)
        lines << "ancestors: #{value.ancestors.first(12).map(&:to_s).join(', ')}"
        singleton = (value.methods - Module.instance_methods).sort.first(60)
        lines << "methods: #{singleton.join(', ')}" unless singleton.empty?
      end
      lines.join("\n")
    end

    VERBS = { 'execute' => :execute, 'complete' => :complete, 'is_complete' => :is_complete,
              'inspect' => :inspect_value }.freeze

    def self.handle(msg)
      verb = VERBS[msg['op']]
      return if msg['op'] == 'input_reply' # a late answer to an input() that was interrupted

      unless verb
        return Channel.send_msg({ type: 'error', ename: 'DriverError', evalue: "unknown op #{msg['op']}",
                                  traceback: [] })
      end
      send(verb, msg)
    rescue StandardError => e
      # A query still gets its (empty) answer: the frontend should not wait for one that never comes.
      $stderr.puts("backendai ruby driver: #{msg['op']}: #{e.full_message(highlight: false)}")
      Channel.send_msg(EMPTY_ANSWERS.fetch(msg['op']) do
        { type: 'error', ename: 'DriverError', evalue: BackendAI.text(e.message), traceback: [] }
      end)
    end

    EMPTY_ANSWERS = { 'complete' => { type: 'complete', matches: [], cursor_start: 0, cursor_end: 0 },
                      'is_complete' => { type: 'is_complete', status: 'unknown' },
                      'inspect' => { type: 'inspect', found: false } }.freeze

    def self.main
      $stdout.sync = true
      $stderr.sync = true
      $stdin = BackendAI::Stdin.new
      $PROGRAM_NAME = 'ruby'
      # SIGINT raises Interrupt in the running cell only; between cells it is ignored.
      trap('INT') { raise Interrupt if BackendAI.running }
      Channel.send_msg({ type: 'ready', version: RUBY_VERSION })
      loop do
        msg = begin
          Channel.read_frame
        rescue Interrupt
          next
        end
        handle(msg)
      end
    end
  end
end

# input('prompt') anywhere, like Python's; gets and $stdin.gets ask the frontend too.
def input(prompt = '', password: false)
  BackendAI.input(prompt, password: password)
end

BackendAI::Driver.main
