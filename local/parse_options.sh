#!/usr/bin/env bash
# Source this after declaring variables with defaults: turns `--some-name value` (or
# `--some-name=value`) into `some_name=value` for every variable that already exists.
# Unknown options and `--help` print the known options and exit. Written for gmot.
# Usage (in a script):  stage=0; stop_stage=100; . local/parse_options.sh || exit 1

_gmot_usage() {
  echo "Usage: $0 [options]" >&2
  echo "Options (current value in brackets):" >&2
  for _v in ${_gmot_known:-}; do
    echo "  --${_v//_/-} [${!_v}]" >&2
  done
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) _gmot_usage; exit 0 ;;
    --*=*) _gmot_name="${1%%=*}"; _gmot_value="${1#*=}"; shift ;;
    --*)
      _gmot_name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      _gmot_value="$2"; shift 2 ;;
    *) echo "$0: unexpected argument '$1' (options look like --name value)" >&2; exit 1 ;;
  esac
  _gmot_var="${_gmot_name#--}"
  _gmot_var="${_gmot_var//-/_}"
  if [ -z "${!_gmot_var+x}" ] || ! [[ "$_gmot_var" =~ ^[a-zA-Z_][a-zA-Z0-9_]*$ ]]; then
    echo "$0: unknown option $_gmot_name" >&2
    _gmot_usage
    exit 1
  fi
  printf -v "$_gmot_var" '%s' "$_gmot_value"
done
unset _gmot_name _gmot_value _gmot_var
true
