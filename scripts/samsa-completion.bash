# samsa-completion.bash - bash completion for the samsa command-line tool.
#
# Install: `make install` copies it to the bash-completion directory; or
#   source scripts/samsa-completion.bash
# Completes commands, verbs and options; topic and group names are asked of
# the cluster (with a 2 s timeout, honouring -b and SAMSA_BROKERS), files for
# dump-log and storage -c.

_samsa_nouns="topic produce consume group offsets config cluster storage dump-log perf txn version help"
_samsa_globals="-b --brokers --format -X --timeout -v --verbose -h --help"

# Brokers named on the command line (-b X / --brokers X / -bX), if any.
_samsa_brokers_arg() {
    local i w
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        w=${COMP_WORDS[i]}
        case "$w" in
            -b|--brokers|--bootstrap-server) echo "-b ${COMP_WORDS[i+1]}"; return ;;
            --brokers=*) echo "-b ${w#--brokers=}"; return ;;
        esac
    done
}

_samsa_topics() {
    # shellcheck disable=SC2046
    samsa $(_samsa_brokers_arg) --timeout 2s topic list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_samsa_groups() {
    # shellcheck disable=SC2046
    samsa $(_samsa_brokers_arg) --timeout 2s group list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_samsa() {
    local cur prev words=() i w skip=0
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()

    # The positional words typed so far, without global options and values.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((skip)); then skip=0; continue; fi
        case "$w" in
            -b|--brokers|--bootstrap-server|--format|-X|--timeout) skip=1; continue ;;
            -*) continue ;;
        esac
        words+=("$w")
    done

    # Values of global options.
    case "$prev" in
        --format) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
        -b|--brokers|--bootstrap-server|-X|--timeout) return ;;
    esac

    local noun=${words[0]:-} verb=${words[1]:-}
    if [[ -z $noun ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$_samsa_globals" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$_samsa_nouns" -- "$cur"))
        fi
        return
    fi

    local verbs="" opts="" names=""
    case "$noun" in
        topic|topics)
            verbs="create list describe alter delete delete-records"
            case "$verb" in
                delete-records) opts="-p --partition -o --offset"; names=topics ;;
                create) opts="-p --partitions -r --replicas -c --config --if-not-exists" ;;
                list) opts="-a --all" ;;
                describe) opts="--all-configs"; names=topics ;;
                alter) opts="-p --partitions"; names=topics ;;
                delete) opts="--if-exists"; names=topics ;;
            esac ;;
        produce)
            verbs=""; names=topics
            opts="-k -K --key-delimiter -Z --null-empty -H --header --timestamp -F --input-format -p --partition -z --compression --acks --linger"
            case "$prev" in
                -z|--compression) COMPREPLY=($(compgen -W "none gzip snappy lz4 zstd" -- "$cur")); return ;;
                --acks) COMPREPLY=($(compgen -W "0 1 all" -- "$cur")); return ;;
            esac ;;
        consume)
            verbs=""; names=topics
            opts="-o --offset -p --partition -n --count -e --exit -g --group -f --fmt"
            case "$prev" in
                -o|--offset) COMPREPLY=($(compgen -W "beginning end" -- "$cur")); return ;;
                -g|--group) COMPREPLY=($(compgen -W "$(_samsa_groups)" -- "$cur")); return ;;
            esac ;;
        group|groups)
            verbs="list describe reset-offsets delete delete-offsets"
            case "$verb" in
                describe|delete) names=groups ;;
                delete-offsets)
                    if ((${#words[@]} == 2)); then names=groups; else names=topics; fi ;;
                reset-offsets)
                    opts="--topic --all-topics --to-earliest --to-latest --to-offset --to-datetime --shift-by --by-duration --execute --dry-run"
                    [[ $prev == --topic ]] && { COMPREPLY=($(compgen -W "$(_samsa_topics)" -- "$cur")); return; }
                    ((${#words[@]} == 2)) && names=groups ;;
            esac ;;
        offsets)
            verbs=""; names=topics
            opts="-t --time -p --partition"
            case "$prev" in
                -t|--time) COMPREPLY=($(compgen -W "earliest latest" -- "$cur")); return ;;
            esac ;;
        config|configs)
            verbs="get set delete"
            if [[ -n $verb ]]; then
                if ((${#words[@]} == 2)); then
                    COMPREPLY=($(compgen -W "topic broker" -- "$cur")); return
                fi
                [[ ${words[2]} == topic && ${#words[@]} == 3 ]] && names=topics
                [[ $verb == get ]] && opts="--changed"
            fi ;;
        cluster) verbs="info health quorum elect-leaders reassign reassignments log-dirs" ;;
        storage)
            verbs="format info random-uuid"
            case "$verb" in
                format) opts="-c --config --cluster-id --ignore-formatted --override" ;;
                info) opts="-c --config" ;;
            esac
            [[ $prev == -c || $prev == --config ]] && { COMPREPLY=($(compgen -f -- "$cur")); return; } ;;
        dump-log)
            verbs=""
            opts="-d --print-data --deep --offsets-decoder --cluster-metadata-decoder --max-batch-bytes"
            if [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
                return
            fi ;;
        perf)
            verbs="produce consume e2e mock-cluster"
            opts="-n --count -s --size --rate --acks --partitions --linger --batch-size --queue-size -z --compression -g --group --topic --brokers --idempotent --txn-size --transactional-id --isolation"
            [[ -n $verb && ${#words[@]} == 2 ]] && names=topics ;;
        txn)
            verbs="list describe describe-producers abort find-hanging"
            case "$verb" in
                list) opts="--state --producer-id --min-duration" ;;
                describe) opts="--transactional-id" ;;
                describe-producers) opts="--topic --partition --broker-id" ;;
                abort) opts="--topic --partition --start-offset --producer-id --producer-epoch --coordinator-epoch" ;;
                find-hanging) opts="--broker-id --topic --partition --max-transaction-timeout" ;;
            esac
            case "$prev" in
                --topic) COMPREPLY=($(compgen -W "$(_samsa_topics)" -- "$cur")); return ;;
                --state) COMPREPLY=($(compgen -W "Empty Ongoing PrepareCommit PrepareAbort CompleteCommit CompleteAbort PrepareEpochFence" -- "$cur")); return ;;
            esac ;;
        *) return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts -h --help" -- "$cur"))
    elif [[ -n $verbs && ${#words[@]} == 1 ]]; then
        COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
    elif [[ $names == topics ]]; then
        COMPREPLY=($(compgen -W "$(_samsa_topics)" -- "$cur"))
    elif [[ $names == groups ]]; then
        COMPREPLY=($(compgen -W "$(_samsa_groups)" -- "$cur"))
    fi
}

complete -F _samsa samsa
