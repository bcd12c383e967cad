#compdef samsa
# samsa-completion.zsh - zsh completion for the samsa command-line tool.
#
# Install: `make install` copies it to $(PREFIX)/share/zsh/site-functions/_samsa
# (that directory must be in $fpath before compinit runs). To try it:
#   fpath=(/path/to/dir-with-_samsa $fpath); autoload -U compinit && compinit
# Completes commands, verbs and options; topic and group names are asked of
# the cluster (2 s timeout, honouring -b and SAMSA_BROKERS); files for
# dump-log and storage -c. Keep in step with samsa-completion.bash.

_samsa_brokers_opt() {
    local i
    for ((i = 2; i < CURRENT; i++)); do
        case ${words[i]} in
            -b|--brokers|--bootstrap-server) print -r -- "-b ${words[i+1]}"; return ;;
            --brokers=*) print -r -- "-b ${words[i]#--brokers=}"; return ;;
        esac
    done
}

_samsa_topics() {
    local -a t
    t=(${(f)"$(samsa ${=$(_samsa_brokers_opt)} --timeout 2s topic list 2>/dev/null | awk 'NR > 1 { print $1 }')"})
    compadd -a t
}

_samsa_groups() {
    local -a g
    g=(${(f)"$(samsa ${=$(_samsa_brokers_opt)} --timeout 2s group list 2>/dev/null | awk 'NR > 1 { print $1 }')"})
    compadd -a g
}

_samsa() {
    local -a nouns pos
    nouns=(
        'topic:manage topics'
        'produce:write stdin lines as messages'
        'consume:print messages'
        'group:consumer groups'
        'offsets:earliest, latest and by-time offsets'
        'config:dynamic configuration'
        'cluster:cluster id, controller, brokers, APIs'
        'storage:prepare log directories (offline)'
        'dump-log:decode .log/.index/.timeindex (offline)'
        'perf:benchmark client'
        'txn:transactions and producer state'
        'version:print the version'
    )
    # positional words so far, without global options and their values
    local i skip=0
    for ((i = 2; i < CURRENT; i++)); do
        if ((skip)); then skip=0; continue; fi
        case ${words[i]} in
            -b|--brokers|--bootstrap-server|--format|-X|--timeout) skip=1; continue ;;
            -*) continue ;;
        esac
        pos+=(${words[i]})
    done
    case ${words[CURRENT-1]} in
        --format) compadd table json; return ;;
        -b|--brokers|--bootstrap-server|-X|--timeout) return ;;
    esac
    local noun=${pos[1]} verb=${pos[2]} cur=${words[CURRENT]} prev=${words[CURRENT-1]}
    if [[ -z $noun ]]; then
        if [[ $cur == -* ]]; then
            compadd -- -b --brokers --format -X --timeout -v --verbose -h --help
        else
            _describe -t commands 'samsa command' nouns
        fi
        return
    fi
    local -a verbs opts
    local names=""
    case $noun in
        topic|topics)
            verbs=(create list describe alter delete delete-records)
            case $verb in
                create) opts=(-p --partitions -r --replicas -c --config --if-not-exists) ;;
                list) opts=(-a --all) ;;
                describe) opts=(--all-configs); names=topics ;;
                alter) opts=(-p --partitions); names=topics ;;
                delete) opts=(--if-exists); names=topics ;;
                delete-records) opts=(-p --partition -o --offset); names=topics ;;
            esac ;;
        produce)
            names=topics
            opts=(-k -K --key-delimiter -Z --null-empty -H --header --timestamp -F --input-format
                  -p --partition -z --compression --acks --linger)
            case $prev in
                -z|--compression) compadd none gzip snappy lz4 zstd; return ;;
                --acks) compadd 0 1 all; return ;;
            esac ;;
        consume)
            names=topics
            opts=(-o --offset -p --partition -n --count -e --exit -g --group -f --fmt)
            case $prev in
                -o|--offset) compadd beginning end; return ;;
                -g|--group) _samsa_groups; return ;;
            esac ;;
        group|groups)
            verbs=(list describe reset-offsets delete delete-offsets)
            case $verb in
                describe|delete) names=groups ;;
                delete-offsets) if ((${#pos} == 2)); then names=groups; else names=topics; fi ;;
                reset-offsets)
                    opts=(--topic --all-topics --to-earliest --to-latest --to-offset --to-datetime
                          --shift-by --by-duration --execute --dry-run)
                    [[ $prev == --topic ]] && { _samsa_topics; return; }
                    ((${#pos} == 2)) && names=groups ;;
            esac ;;
        offsets)
            names=topics
            opts=(-t --time -p --partition)
            [[ $prev == -t || $prev == --time ]] && { compadd earliest latest; return; } ;;
        config|configs)
            verbs=(get set delete)
            if [[ -n $verb ]]; then
                ((${#pos} == 2)) && { compadd topic broker; return; }
                [[ ${pos[3]} == topic && ${#pos} == 3 ]] && names=topics
                [[ $verb == get ]] && opts=(--changed)
            fi ;;
        cluster) verbs=(info health quorum elect-leaders reassign reassignments log-dirs) ;;
        storage)
            verbs=(format info random-uuid)
            case $verb in
                format) opts=(-c --config --cluster-id --ignore-formatted --override) ;;
                info) opts=(-c --config) ;;
            esac
            [[ $prev == -c || $prev == --config ]] && { _files; return; } ;;
        dump-log)
            opts=(-d --print-data --deep --offsets-decoder --cluster-metadata-decoder
                  --max-batch-bytes)
            [[ $cur != -* ]] && { _files; return; } ;;
        perf)
            verbs=(produce consume e2e mock-cluster)
            opts=(-n --count -s --size --rate --acks --partitions --linger --batch-size
                  --queue-size -z --compression -g --group --topic --brokers --idempotent
                  --txn-size --transactional-id --isolation)
            [[ -n $verb && ${#pos} == 2 ]] && names=topics ;;
        txn)
            verbs=(list describe describe-producers abort find-hanging)
            case $verb in
                list) opts=(--state --producer-id --min-duration) ;;
                describe) opts=(--transactional-id) ;;
                describe-producers) opts=(--topic --partition --broker-id) ;;
                abort) opts=(--topic --partition --start-offset --producer-id --producer-epoch
                             --coordinator-epoch) ;;
                find-hanging) opts=(--broker-id --topic --partition --max-transaction-timeout) ;;
            esac
            [[ $prev == --topic ]] && { _samsa_topics; return; }
            [[ $prev == --state ]] && { compadd Empty Ongoing PrepareCommit PrepareAbort \
                CompleteCommit CompleteAbort PrepareEpochFence; return; } ;;
        *) return ;;
    esac
    if [[ $cur == -* ]]; then
        compadd -- $opts -h --help
    elif ((${#verbs} && ${#pos} == 1)); then
        compadd -a verbs
    elif [[ $names == topics ]]; then
        _samsa_topics
    elif [[ $names == groups ]]; then
        _samsa_groups
    fi
}

_samsa "$@"
