#!/usr/bin/env bash
# Shared helpers for recipe stages: logging and done-markers that remember their parameters.
#
#   . ../_common/stages.sh
#   if stage_wanted 0; then
#     params="hours=$hours seed=$seed"
#     if stage_is_done data/.stage0.done "$params" "stage 0 (corpus)"; then :; else
#       run_logged python -m ... ; stage_mark_done data/.stage0.done "$params"
#     fi
#   fi
#
# stage_is_done MARKER PARAMS NAME: returns 0 and says "skipping" when MARKER exists and holds exactly
# PARAMS; when MARKER holds other parameters it says what changed, removes it and returns 1 (redo).
# A marker is written only after the stage succeeded, atomically, so a killed stage is redone.

log() { echo "$(date -u +'%Y-%m-%d %H:%M:%S') [$(basename "$0")] $*" >&2; }

run_logged() {
  log "run: $*"
  "$@"
}

stage_wanted() {  # stage_wanted N: is N within [stage, stop_stage]?
  [ "$1" -ge "${stage:-0}" ] && [ "$1" -le "${stop_stage:-1000}" ]
}

stage_is_done() {
  local marker="$1" params="$2" name="$3"
  if [ -f "$marker" ]; then
    local old
    old=$(cat "$marker")
    if [ "$old" == "$params" ]; then
      log "$name: already done with these parameters ($marker) - skipping"
      return 0
    fi
    log "$name: parameters changed since the last run - redoing it"
    log "  was: $old"
    log "  now: $params"
    rm -f "$marker"
  fi
  return 1
}

stage_mark_done() {  # stage_mark_done MARKER PARAMS (atomic)
  local marker="$1" params="$2" tmp
  mkdir -p "$(dirname "$marker")"
  tmp="$(dirname "$marker")/.$(basename "$marker").tmp.$$"
  printf '%s\n' "$params" > "$tmp"
  mv -f "$tmp" "$marker"
}

file_digest() {  # file_digest FILE...: short content hash (for parameters that are files)
  cat "$@" | sha1sum | cut -c1-12
}

# A path option as given on the command line, made absolute against the directory the recipe was
# started from ($_caller_dir, which the recipe records before it cd's into its own folder), so that
# relative paths mean what the user meant. An empty value stays empty.
caller_abspath() { case "$1" in /*|"") echo "$1" ;; *) echo "${_caller_dir:?}/$1" ;; esac; }
