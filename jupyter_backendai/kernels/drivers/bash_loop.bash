# SPDX-License-Identifier: LGPL-3.0-or-later
# The shell side of the Bash driver (bash_driver.py), sourced by one long-lived bash:
# `bash --noprofile --norc -c '. "$1"' bash THIS_FILE`. Requests come NUL-separated on
# fd $BACKENDAI_BASH_CTL_FD; records go back on fd $BACKENDAI_BASH_REP_FD as
# KIND NUL COUNT NUL FIELD NUL... Cells run in this shell (eval inside __bai_run), so
# variables, functions, aliases, options and the working directory carry over. A cell's stdin
# is a FIFO the driver writes input replies to.

__bai_ctl=$BACKENDAI_BASH_CTL_FD
__bai_rep=$BACKENDAI_BASH_REP_FD
__bai_stdin=$BACKENDAI_BASH_STDIN
unset BACKENDAI_BASH_CTL_FD BACKENDAI_BASH_REP_FD BACKENDAI_BASH_STDIN \
      BACKENDAI_DRIVER_CMD_FD BACKENDAI_DRIVER_EVENT_FD
set --
__bai_seq=0

__bai_send() {  # KIND FIELD...
  local __bai_kind=$1
  shift
  printf '%s\0' "$__bai_kind" "$#" "$@" >&"$__bai_rep"
}

# ----- interrupts ---------------------------------------------------------------------------
# A non-interactive shell would run the next command after SIGINT killed the current one. The
# INT trap arms a DEBUG trap that (with extdebug) makes every function return before its next
# command, up to __bai_run, so the whole cell stops and the shell stays.
# FUNCNAME's length in a function called from this file's own level, which is never left.
__bai_probe() { __bai_depth=${#FUNCNAME[@]}; }
__bai_probe
__bai_unwind() {
  (( ${#FUNCNAME[@]} > __bai_depth )) && return 2
  return 0
}
__bai_on_int() {
  __bai_intr=1
  shopt -s extdebug
  trap __bai_unwind DEBUG
}
__bai_run() {
  eval "$__bai_code"
}

# ----- helpers for the user -----------------------------------------------------------------

# read -p PROMPT shows no prompt when stdin is not a terminal: hand it (and -s) to the driver,
# which asks the frontend with it when this process blocks reading the cell's stdin.
read() {
  local __bai_i=1 __bai_a __bai_c __bai_v __bai_k __bai_p= __bai_has= __bai_secret=
  while (( __bai_i <= $# )); do
    __bai_a=${!__bai_i}
    [[ $__bai_a == -- || $__bai_a != -?* ]] && break
    for (( __bai_k = 1; __bai_k < ${#__bai_a}; __bai_k++ )); do
      __bai_c=${__bai_a:__bai_k:1}
      [[ $__bai_c == s ]] && __bai_secret=1
      if [[ $__bai_c == [adinNtup] ]]; then
        __bai_v=${__bai_a:__bai_k+1}
        if [[ -z $__bai_v ]]; then (( __bai_i++ )); __bai_v=${!__bai_i-}; fi
        [[ $__bai_c == p ]] && { __bai_p=$__bai_v; __bai_has=1; }
        break
      fi
    done
    (( __bai_i++ ))
  done
  if [[ ($__bai_has || $__bai_secret) && ! -t 0 ]]; then
    __bai_send prompt "$BASHPID" "$__bai_p" "$__bai_secret"
  fi
  builtin read "$@"
}

# display MIME [FILE]: show FILE (or stdin) as MIME; images are sent base64-encoded.
display() {
  local __bai_mime=${1-} __bai_file=${2--} __bai_data __bai_n
  if [[ -z $__bai_mime ]]; then
    echo "usage: display MIME [FILE]  (without FILE the content is read from stdin)" >&2
    return 2
  fi
  if [[ $__bai_file != - && ! -r $__bai_file ]]; then
    echo "display: $__bai_file: cannot read" >&2
    return 1
  fi
  case $__bai_mime in
    image/svg+xml|text/*|*json|*xml|*javascript) __bai_data=$(cat -- "$__bai_file") ;;
    *) __bai_data=$(base64 -w0 -- "$__bai_file") ;;
  esac || return 1
  __bai_n=$(( BASHPID * 1000000 + (++__bai_seq) ))
  # The marker puts the display at this place in stdout (kernels/ordering.py).
  printf '\e]5150;bai-display;%s\a' "$__bai_n"
  __bai_send display "$__bai_mime" "$__bai_data" "$__bai_n"
}
display_svg() { display image/svg+xml "$@"; }
display_png() { display image/png "$@"; }
display_jpeg() { display image/jpeg "$@"; }
# display_html FILE, display_html 'HTML TEXT', or HTML on stdin.
display_html() {
  if (( $# )) && [[ ! -f $1 ]]; then
    printf '%s' "$*" | display text/html
  else
    display text/html "$@"
  fi
}

# ----- the loop -----------------------------------------------------------------------------

__bai_complete() {  # MODE TOKEN
  local -a __bai_m=()
  local __bai_f
  case $1 in
    var) mapfile -t __bai_m < <(compgen -v -- "$2") ;;
    command) mapfile -t __bai_m < <(compgen -A function -A alias -A builtin -A keyword -A command -- "$2" \
                                    | LC_ALL=C sort -u) ;;
    *) while IFS= read -r __bai_f; do
         [[ -d $__bai_f ]] && __bai_f+=/
         __bai_m+=("$__bai_f")
       done < <(compgen -f -- "$2" | LC_ALL=C sort -u) ;;
  esac
  __bai_send complete "${__bai_m[@]}"
}

__bai_inspect() {  # NAME
  local __bai_t
  __bai_t=$(
    exec 2>/dev/null
    type -- "$1"
    case $(type -t -- "$1") in builtin|keyword) help -- "$1" ;; esac
    declare -p -- "$1"
  )
  __bai_send inspect "$__bai_t"
}

trap '' INT  # between cells an interrupt has nothing to stop
__bai_send ready "$BASH_VERSION"
while :; do
  IFS= builtin read -r -d '' __bai_op <&"$__bai_ctl" || exit 0
  case $__bai_op in
    execute)
      IFS= builtin read -r -d '' __bai_code <&"$__bai_ctl" || exit 0
      __bai_intr=
      trap __bai_on_int INT
      __bai_run <"$__bai_stdin"
      __bai_status=$?
      trap '' INT
      trap - DEBUG
      shopt -u extdebug
      __bai_send done "$__bai_status" "$__bai_intr"
      ;;
    complete)
      IFS= builtin read -r -d '' __bai_mode <&"$__bai_ctl" || exit 0
      IFS= builtin read -r -d '' __bai_tok <&"$__bai_ctl" || exit 0
      __bai_complete "$__bai_mode" "$__bai_tok"
      ;;
    inspect)
      IFS= builtin read -r -d '' __bai_tok <&"$__bai_ctl" || exit 0
      __bai_inspect "$__bai_tok"
      ;;
  esac
done
