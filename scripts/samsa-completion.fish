# samsa-completion.fish - fish completion for the samsa command-line tool.
#
# Install: `make install` copies it to
# $(PREFIX)/share/fish/vendor_completions.d/samsa.fish; to try it:
#   source scripts/samsa-completion.fish
# Completes commands, verbs and options; topic and group names are asked of
# the cluster (2 s timeout, honouring -b and SAMSA_BROKERS); files for
# dump-log. Keep in step with samsa-completion.bash.

function __samsa_brokers_opt
    set -l w (commandline -opc)
    for i in (seq (count $w))
        switch $w[$i]
            case -b --brokers --bootstrap-server
                set -l n (math $i + 1)
                test $n -le (count $w); and echo -b; and echo $w[$n]
                return
        end
    end
end

function __samsa_topics
    samsa (__samsa_brokers_opt) --timeout 2s topic list 2>/dev/null | awk 'NR > 1 { print $1 }'
end

function __samsa_groups
    samsa (__samsa_brokers_opt) --timeout 2s group list 2>/dev/null | awk 'NR > 1 { print $1 }'
end

# The positional words typed so far (global options and their values skipped).
function __samsa_pos
    set -l w (commandline -opc)
    set -e w[1]
    set -l skip 0
    for x in $w
        if test $skip = 1
            set skip 0
            continue
        end
        switch $x
            case -b --brokers --bootstrap-server --format -X --timeout
                set skip 1
            case '-*'
            case '*'
                echo $x
        end
    end
end

# True when the positional words are exactly $argv.
function __samsa_at
    set -l p (__samsa_pos)
    test (count $p) -eq (count $argv); or return 1
    for i in (seq (count $argv))
        test "$p[$i]" = "$argv[$i]"; or return 1
    end
end

# True when the first positional words are $argv (any more may follow).
function __samsa_in
    set -l p (__samsa_pos)
    test (count $p) -ge (count $argv); or return 1
    for i in (seq (count $argv))
        test "$p[$i]" = "$argv[$i]"; or return 1
    end
end

complete -c samsa -f
# global options
complete -c samsa -s b -l brokers -r -d 'bootstrap brokers host:port[,host:port]'
complete -c samsa -l format -x -a 'table json' -d 'output format'
complete -c samsa -s X -r -d 'librdkafka property key=value'
complete -c samsa -l timeout -r -d 'bound on each network wait'
complete -c samsa -s v -l verbose -d 'client debug logs'
complete -c samsa -s h -l help -d help

# commands
complete -c samsa -n '__samsa_at' -a topic -d 'manage topics'
complete -c samsa -n '__samsa_at' -a produce -d 'write stdin lines as messages'
complete -c samsa -n '__samsa_at' -a consume -d 'print messages'
complete -c samsa -n '__samsa_at' -a group -d 'consumer groups'
complete -c samsa -n '__samsa_at' -a offsets -d 'earliest, latest and by-time offsets'
complete -c samsa -n '__samsa_at' -a config -d 'dynamic configuration'
complete -c samsa -n '__samsa_at' -a cluster -d 'cluster id, controller, brokers, APIs'
complete -c samsa -n '__samsa_at' -a storage -d 'prepare log directories (offline)'
complete -c samsa -n '__samsa_at' -a dump-log -d 'decode log files (offline)'
complete -c samsa -n '__samsa_at' -a perf -d 'benchmark client'
complete -c samsa -n '__samsa_at' -a txn -d 'transactions and producer state'
complete -c samsa -n '__samsa_at' -a version -d 'print the version'

# topic
complete -c samsa -n '__samsa_at topic' -a 'create list describe alter delete delete-records'
complete -c samsa -n '__samsa_in topic create' -s p -l partitions -r
complete -c samsa -n '__samsa_in topic create' -s r -l replicas -r
complete -c samsa -n '__samsa_in topic create' -s c -l config -r
complete -c samsa -n '__samsa_in topic create' -l if-not-exists
complete -c samsa -n '__samsa_in topic list' -s a -l all
complete -c samsa -n '__samsa_in topic describe' -l all-configs
complete -c samsa -n '__samsa_in topic alter' -s p -l partitions -r
complete -c samsa -n '__samsa_in topic delete' -l if-exists
complete -c samsa -n '__samsa_in topic delete-records' -s p -l partition -r
complete -c samsa -n '__samsa_in topic delete-records' -s o -l offset -r
complete -c samsa -n '__samsa_in topic describe; or __samsa_in topic alter; or __samsa_in topic delete; or __samsa_at topic delete-records' -a '(__samsa_topics)'

# produce / consume / offsets
complete -c samsa -n '__samsa_at produce; or __samsa_at consume; or __samsa_in offsets' -a '(__samsa_topics)'
complete -c samsa -n '__samsa_in produce' -s k -s K -l key-delimiter -r -d 'key separator'
complete -c samsa -n '__samsa_in produce' -s Z -l null-empty -d 'empty values are null (tombstones)'
complete -c samsa -n '__samsa_in produce' -s H -l header -r -d 'header key=value'
complete -c samsa -n '__samsa_in produce' -l timestamp -r -d 'message timestamp'
complete -c samsa -n '__samsa_in produce' -s F -l input-format -r -d 'line template: %k %v %T %h'
complete -c samsa -n '__samsa_in produce' -s p -l partition -r
complete -c samsa -n '__samsa_in produce' -s z -l compression -x -a 'none gzip snappy lz4 zstd'
complete -c samsa -n '__samsa_in produce' -l acks -x -a '0 1 all'
complete -c samsa -n '__samsa_in produce' -l linger -r
complete -c samsa -n '__samsa_in consume' -s o -l offset -x -a 'beginning end'
complete -c samsa -n '__samsa_in consume' -s p -l partition -r
complete -c samsa -n '__samsa_in consume' -s n -l count -r
complete -c samsa -n '__samsa_in consume' -s e -l exit
complete -c samsa -n '__samsa_in consume' -s g -l group -x -a '(__samsa_groups)'
complete -c samsa -n '__samsa_in consume' -s f -l fmt -r
complete -c samsa -n '__samsa_in offsets' -s t -l time -x -a 'earliest latest'
complete -c samsa -n '__samsa_in offsets' -s p -l partition -r

# group
complete -c samsa -n '__samsa_at group' -a 'list describe reset-offsets delete delete-offsets'
complete -c samsa -n '__samsa_in group describe; or __samsa_in group delete; or __samsa_at group reset-offsets; or __samsa_at group delete-offsets' -a '(__samsa_groups)'
complete -c samsa -n '__samsa_in group delete-offsets; and not __samsa_at group delete-offsets' -a '(__samsa_topics)'
complete -c samsa -n '__samsa_in group reset-offsets' -l topic -x -a '(__samsa_topics)'
complete -c samsa -n '__samsa_in group reset-offsets' -l all-topics
complete -c samsa -n '__samsa_in group reset-offsets' -l to-earliest
complete -c samsa -n '__samsa_in group reset-offsets' -l to-latest
complete -c samsa -n '__samsa_in group reset-offsets' -l to-offset -r
complete -c samsa -n '__samsa_in group reset-offsets' -l to-datetime -r
complete -c samsa -n '__samsa_in group reset-offsets' -l shift-by -r
complete -c samsa -n '__samsa_in group reset-offsets' -l by-duration -r
complete -c samsa -n '__samsa_in group reset-offsets' -l execute
complete -c samsa -n '__samsa_in group reset-offsets' -l dry-run

# config
complete -c samsa -n '__samsa_at config' -a 'get set delete'
complete -c samsa -n '__samsa_at config get; or __samsa_at config set; or __samsa_at config delete' -a 'topic broker'
complete -c samsa -n '__samsa_at config get topic; or __samsa_at config set topic; or __samsa_at config delete topic' -a '(__samsa_topics)'
complete -c samsa -n '__samsa_in config get' -l changed

# cluster, storage
complete -c samsa -n '__samsa_at cluster' -a 'info health quorum elect-leaders reassign reassignments log-dirs'
complete -c samsa -n '__samsa_at storage' -a 'format info random-uuid'
complete -c samsa -n '__samsa_in storage format; or __samsa_in storage info' -s c -l config -r -F
complete -c samsa -n '__samsa_in storage format' -l cluster-id -r
complete -c samsa -n '__samsa_in storage format' -l ignore-formatted
complete -c samsa -n '__samsa_in storage format' -l override -r

# dump-log: files
complete -c samsa -n '__samsa_in dump-log' -F
complete -c samsa -n '__samsa_in dump-log' -s d -l print-data
complete -c samsa -n '__samsa_in dump-log' -l deep
complete -c samsa -n '__samsa_in dump-log' -l offsets-decoder -d 'decode __consumer_offsets records'
complete -c samsa -n '__samsa_in dump-log' -l cluster-metadata-decoder -d 'decode metadata-log records'
complete -c samsa -n '__samsa_in dump-log' -l max-batch-bytes -r

# perf
complete -c samsa -n '__samsa_at perf' -a 'produce consume e2e mock-cluster'
complete -c samsa -n '__samsa_at perf produce; or __samsa_at perf consume; or __samsa_at perf e2e' -a '(__samsa_topics)'
for o in count size rate acks partitions linger batch-size queue-size compression group topic
    complete -c samsa -n '__samsa_in perf' -l $o -r
end
complete -c samsa -n '__samsa_in perf' -l idempotent
complete -c samsa -n '__samsa_in perf' -l txn-size -r
complete -c samsa -n '__samsa_in perf' -l transactional-id -r
complete -c samsa -n '__samsa_in perf' -l isolation -r -a 'read_committed read_uncommitted'

# txn
complete -c samsa -n '__samsa_at txn' -a 'list describe describe-producers abort find-hanging'
complete -c samsa -n '__samsa_in txn list' -l state -x -a 'Empty Ongoing PrepareCommit PrepareAbort CompleteCommit CompleteAbort PrepareEpochFence'
complete -c samsa -n '__samsa_in txn list' -l min-duration -r
complete -c samsa -n '__samsa_in txn list; or __samsa_in txn abort' -l producer-id -r
complete -c samsa -n '__samsa_in txn describe' -l transactional-id -r
complete -c samsa -n '__samsa_in txn describe-producers; or __samsa_in txn abort; or __samsa_in txn find-hanging' -l topic -x -a '(__samsa_topics)'
complete -c samsa -n '__samsa_in txn describe-producers; or __samsa_in txn abort; or __samsa_in txn find-hanging' -l partition -r
complete -c samsa -n '__samsa_in txn describe-producers; or __samsa_in txn find-hanging' -l broker-id -r
for o in start-offset producer-epoch coordinator-epoch
    complete -c samsa -n '__samsa_in txn abort' -l $o -r
end
complete -c samsa -n '__samsa_in txn find-hanging' -l max-transaction-timeout -r
