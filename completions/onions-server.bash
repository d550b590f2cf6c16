# bash completion for onions-server. Generated from onions-server's flags by
# scripts/completions; do not edit (a test fails when it drifts).

_onions_server()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion -n : || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local command="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            status)
                command=${words[i]}
                break ;;
        esac
    done

    case $prev in
        --config | --witness-key)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return ;;
        --role)
            mapfile -t COMPREPLY < <(compgen -W 'quorum mirror' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --listen)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:10053 127.0.0.1:10054' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --state-dir)
            mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            return ;;
        --metrics)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:10063 127.0.0.1:10064' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --log-level)
            mapfile -t COMPREPLY < <(compgen -W 'error warn info debug trace' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --server)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:10053' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --upstream | --upstream-socks | --quorum-key | --min-work | --workers | --max-message | --max-connections | --worker-queue | --subscriber-queue | --idle-timeout | --heartbeat | --head-interval | --release-cooldown | --upstream-silence | --cosign-to | --cosign-interval | --trust-witness | --witnesses | --cosigned-heads | --held-pushes | --cosign-wait | --max-reverse-leads | --recover-from)
            return ;;
    esac

    case $command in
        "")
            mapfile -t COMPREPLY < <(compgen -W 'status --config --role --listen --state-dir --print-key --upstream --upstream-socks --quorum-key --min-work --workers --max-message --max-connections --worker-queue --subscriber-queue --idle-timeout --heartbeat --head-interval --release-cooldown --upstream-silence --witness-key --cosign-to --cosign-interval --trust-witness --witnesses --cosigned-heads --held-pushes --cosign-wait --max-reverse-leads --recover-from --metrics --log-level --help' -- "$cur") ;;
        status)
            mapfile -t COMPREPLY < <(compgen -W '--server --json --help' -- "$cur") ;;
    esac
}
complete -F _onions_server onions-server
