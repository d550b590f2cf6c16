# bash completion for onions-hs. Generated from onions-hs's flags by
# scripts/completions; do not edit (a test fails when it drifts).

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

    local command="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            claim | transfer | release | verify | lookup | evidence)
                command=${words[i]}
                break ;;
        esac
    done

    case $prev in
        --config | --key | --out | --state | --transfer)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return ;;
        --lifetime)
            mapfile -t COMPREPLY < <(compgen -W '30 7 1' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --socks)
            mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:9050 127.0.0.1:9150' -- "$cur")
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return ;;
        --sub | --contact | --work | --quorum | --serial | --threads | --to | --hours | --cooldown | --quorum-key | --min-work | --now | --onion | --server | --max-head-age | --witness-key | --witnesses)
            return ;;
    esac

    case $command in
        "")
            mapfile -t COMPREPLY < <(compgen -W 'claim transfer release verify lookup evidence --help' -- "$cur") ;;
        claim)
            mapfile -t COMPREPLY < <(compgen -W '--config --key --sub --contact --work --lifetime --quorum --socks --direct --dry-run --out --serial --state --threads --transfer --help' -- "$cur") ;;
        transfer)
            mapfile -t COMPREPLY < <(compgen -W '--key --to --serial --hours --out --state --help' -- "$cur") ;;
        release)
            mapfile -t COMPREPLY < <(compgen -W '--key --cooldown --work --quorum --socks --direct --dry-run --out --serial --state --threads --help' -- "$cur") ;;
        verify)
            if [[ $cur != -* ]]; then
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                return
            fi
            mapfile -t COMPREPLY < <(compgen -W '--quorum-key --min-work --now --help' -- "$cur") ;;
        lookup)
            mapfile -t COMPREPLY < <(compgen -W '--onion --server --socks --direct --quorum-key --min-work --max-head-age --witness-key --witnesses --help' -- "$cur") ;;
        evidence)
            if [[ $cur != -* ]]; then
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                return
            fi
            mapfile -t COMPREPLY < <(compgen -W '--help' -- "$cur") ;;
    esac
}
complete -F _onions_hs onions-hs
