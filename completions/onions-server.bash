# bash completion for onions-server                        -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/onions-server.

# File names ($1: file or dir), with bash-completion's _filedir when it is
# there.
_onions_server_files()
{
    if declare -F _filedir >/dev/null; then
        if [[ $1 == dir ]]; then _filedir -d; else _filedir; fi
    elif [[ $1 == dir ]]; then
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
}

_onions_server()
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

    if [[ ${COMP_WORDS[1]} == status ]]; then
        case $prev in
            --server) return ;;
        esac
        mapfile -t COMPREPLY < <(compgen -W '--server --json --help' -- "$cur")
        return
    fi

    case $prev in
        --config)
            _onions_server_files file
            return ;;
        --state-dir)
            _onions_server_files dir
            return ;;
        --role)
            mapfile -t COMPREPLY < <(compgen -W 'quorum mirror' -- "$cur")
            return ;;
        --log-level)
            mapfile -t COMPREPLY < <(compgen -W 'error warn info debug trace' -- "$cur")
            return ;;
        --listen)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:10053 127.0.0.1:10054' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --metrics)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:10063 127.0.0.1:10064' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --upstream | --upstream-socks | --quorum-key | --min-work | --workers | --max-message | \
        --max-connections | --worker-queue | --subscriber-queue | \
        --idle-timeout | --heartbeat | --head-interval | --upstream-silence | \
        --cosign-to | --cosign-interval | --trust-witness | --witnesses | \
        --cosigned-heads | --held-pushes | --cosign-wait | --recover-from)
            return ;;
        --witness-key)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return ;;
    esac

    mapfile -t COMPREPLY < <(compgen -W 'status --config --role --listen --state-dir --print-key
        --upstream --upstream-socks --quorum-key --min-work --workers --max-message
        --max-connections --worker-queue --subscriber-queue --idle-timeout
        --heartbeat --head-interval --upstream-silence --witness-key --cosign-to
        --cosign-interval --trust-witness --witnesses --cosigned-heads --held-pushes --cosign-wait
        --recover-from --metrics --log-level --help' -- "$cur")
}
complete -F _onions_server onions-server
