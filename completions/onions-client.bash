# bash completion for onions-client                        -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/onions-client.

# File names ($1: file or dir), with bash-completion's _filedir when it is
# there.
_onions_client_files()
{
    if declare -F _filedir >/dev/null; then
        if [[ $1 == dir ]]; then _filedir -d; else _filedir; fi
    elif [[ $1 == dir ]]; then
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
}

_onions_client()
{
    # words and cword are set by _init_completion.
    # shellcheck disable=SC2034
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion -n : || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
    fi

    case $prev in
        --config | --cookie)
            _onions_client_files file
            return ;;
        --control)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:9051 127.0.0.1:9151 unix:/run/tor/control' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --socks)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:9050 127.0.0.1:9150' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --log-level)
            mapfile -t COMPREPLY < <(compgen -W 'error warn info debug trace' -- "$cur")
            return ;;
        --control-password | --mirror | --quorum-key | --min-work | --max-head-age | \
        --witness-key | --witnesses | --timeout | --quarantine | --cache-size | --lookup-threads | --lookup-queue)
            return ;;
    esac

    mapfile -t COMPREPLY < <(compgen -W '--config --control --control-password --cookie
        --mirror --quorum-key --socks --direct --min-work --max-head-age
        --witness-key --witnesses --timeout
        --quarantine --cache-size --lookup-threads --lookup-queue --release
        --log-level --help' -- "$cur")
}
complete -F _onions_client onions-client
