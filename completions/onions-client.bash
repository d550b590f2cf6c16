# bash completion for onions-client. Generated from onions-client's flags by
# scripts/completions; do not edit (a test fails when it drifts).

_onions_client()
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

    case $prev in
        --config | --cookie)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
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
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --control-password | --mirror | --quorum-key | --min-work | --max-head-age | --witness-key | --witnesses | --timeout | --quarantine | --cache-size | --lookup-threads | --lookup-queue)
            return ;;
    esac

    mapfile -t COMPREPLY < <(compgen -W '--config --control --control-password --cookie --mirror --quorum-key --socks --direct --min-work --max-head-age --witness-key --witnesses --timeout --quarantine --cache-size --lookup-threads --lookup-queue --release --log-level --help' -- "$cur")
}
complete -F _onions_client onions-client
