# bash completion for onions-hs                            -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/onions-hs.

# File names ($1: file or dir), with bash-completion's _filedir when it is
# there.
_onions_hs_files()
{
    if declare -F _filedir >/dev/null; then
        if [[ $1 == dir ]]; then _filedir -d; else _filedir; fi
    elif [[ $1 == dir ]]; then
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
}

_onions_hs()
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

    # The command is the first word after the program.
    local command="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            claim | verify | lookup | evidence | help)
                command=${words[i]}
                break ;;
        esac
    done

    case $prev in
        --config | --key | --out | --state)
            _onions_hs_files file
            return ;;
        --socks)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:9050 127.0.0.1:9150' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --lifetime)
            mapfile -t COMPREPLY < <(compgen -W '30 7 1' -- "$cur")
            return ;;
        --sub | --contact | --work | --quorum | --serial | --threads | \
        --quorum-key | --min-work | --now | --server | --max-head-age | \
        --witness-key | --witnesses)
            return ;;
    esac

    case $command in
        "")
            mapfile -t COMPREPLY < <(compgen -W 'claim verify lookup evidence help --help' -- "$cur") ;;
        help)
            mapfile -t COMPREPLY < <(compgen -W 'claim verify lookup evidence' -- "$cur") ;;
        claim)
            mapfile -t COMPREPLY < <(compgen -W '--config --key --sub --contact --work
                --lifetime --quorum --socks --direct --dry-run --out --serial
                --state --threads --help' -- "$cur") ;;
        verify)
            if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W '--quorum-key --min-work --now --help' -- "$cur")
            else
                _onions_hs_files file
            fi ;;
        lookup)
            mapfile -t COMPREPLY < <(compgen -W '--server --socks --direct --quorum-key
                --min-work --max-head-age --witness-key --witnesses --help' -- "$cur") ;;
        evidence)
            if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W '--help' -- "$cur")
            else
                _onions_hs_files file
            fi ;;
    esac
}
complete -F _onions_hs onions-hs
