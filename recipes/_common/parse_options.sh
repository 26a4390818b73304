#!/usr/bin/env bash
# Kaldi-style command-line options for recipe scripts (source it after setting the defaults).
#
#   stage=0; nj=2; hours=3.0
#   . ../_common/parse_options.sh || exit 1
#
# Every variable defined before sourcing can be set as --name VALUE or --name=VALUE; dashes in the
# name are read as underscores (--stop-stage == --stop_stage). Unknown options and options without a
# value are errors. --help prints the script's header comment (lines starting with '#' after the
# shebang) and the current values. Non-option arguments are left in "$@".

_po_usage() {
  # the script after its `cd "$(dirname "$0")"`: a relative $0 then no longer points at it
  local _f="$0"
  [ -f "$_f" ] || _f="$(basename "$0")"
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$_f"
  echo
  echo "Options (current values):"
  local _v
  for _v in ${_po_names:-}; do printf '  --%-18s %s\n' "$_v" "${!_v}"; done
}

# the variables that can be set: everything the caller declared before sourcing us
_po_names=$( (set -o posix; set) | sed -n 's/^\([a-z][a-z0-9_]*\)=.*/\1/p' | tr '\n' ' ')

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) _po_usage; exit 0 ;;
    --*=*) _po_name="${1%%=*}"; _po_val="${1#*=}"; shift ;;
    --*)
      _po_name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      _po_val="$2"; shift 2 ;;
    *) break ;;
  esac
  _po_name="${_po_name#--}"; _po_name="${_po_name//-/_}"
  case " $_po_names " in
    *" $_po_name "*) ;;
    *) echo "$0: unknown option --$_po_name (run with --help for the list)" >&2; exit 1 ;;
  esac
  # booleans given as true/false stay strings; the script decides what they mean
  printf -v "$_po_name" '%s' "$_po_val"
done
unset _po_name _po_val
true
