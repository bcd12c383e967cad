// sarama_idempotent: send N messages with sarama's idempotent SyncProducer.
//
// Role: the Go client of the integration tests (tests/integration/test_sarama.py
// builds and runs it against a real samsa-broker). Sarama has its own protocol
// code, so this checks the broker's idempotent produce path (InitProducerId,
// per-partition sequences, deduplication of retried batches) with a client
// other than librdkafka.
//
// Messages are "<prefix>-<i>" for i in [0, n), keyed by the same string, sent
// in groups of -batch with SendMessages, to partition i % -partitions (manual
// partitioner). Every acknowledged message is printed as
//
//	ack <partition> <offset> <value>
//
// on stdout, as soon as its group is answered, so a caller can act mid-run
// (kill the broker) and afterwards check that every acknowledged message is in
// the log. Exits 0 after all n were acknowledged, 1 on the first error (a
// message sarama gave up on after its retries, or a failed start), 2 on bad
// usage. Built in GOPATH mode against Debian's golang-github-shopify-sarama-dev
// (sarama 1.22); see test_sarama.py for the exact environment.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma separated")
	topic := flag.String("topic", "", "topic to produce to (must exist)")
	n := flag.Int("n", 100, "number of messages")
	batch := flag.Int("batch", 1, "messages per SendMessages call")
	partitions := flag.Int("partitions", 1, "message i goes to partition i % partitions")
	prefix := flag.String("prefix", "sarama", "value prefix")
	retries := flag.Int("retries", 10, "sarama Producer.Retry.Max")
	backoff := flag.Duration("backoff", 250*time.Millisecond, "sarama Producer.Retry.Backoff")
	interval := flag.Duration("interval", 0, "pause between SendMessages calls")
	flag.Parse()
	if *topic == "" || *n < 0 || *batch < 1 || *partitions < 1 {
		fmt.Fprintln(os.Stderr, "usage: sarama_idempotent -topic T [-n N] [-batch B] [-partitions P] ...")
		os.Exit(2)
	}

	config := sarama.NewConfig()
	config.ClientID = "samsa-it-sarama"
	config.Version = sarama.V2_0_0_0
	config.Producer.Idempotent = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Return.Errors = true
	config.Producer.Partitioner = sarama.NewManualPartitioner
	config.Producer.Retry.Max = *retries
	config.Producer.Retry.Backoff = *backoff
	config.Producer.Timeout = 10 * time.Second
	config.Net.MaxOpenRequests = 1
	config.Net.DialTimeout = 5 * time.Second
	config.Net.ReadTimeout = 15 * time.Second
	config.Net.WriteTimeout = 15 * time.Second
	config.Metadata.Retry.Max = *retries
	config.Metadata.Retry.Backoff = *backoff

	producer, err := sarama.NewSyncProducer(strings.Split(*brokers, ","), config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sarama_idempotent: start: %v\n", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	fail := func(format string, a ...interface{}) {
		out.Flush()
		fmt.Fprintf(os.Stderr, "sarama_idempotent: "+format+"\n", a...)
		producer.Close()
		os.Exit(1)
	}

	for start := 0; start < *n; start += *batch {
		end := start + *batch
		if end > *n {
			end = *n
		}
		msgs := make([]*sarama.ProducerMessage, 0, end-start)
		for i := start; i < end; i++ {
			v := fmt.Sprintf("%s-%d", *prefix, i)
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic:     *topic,
				Partition: int32(i % *partitions),
				Key:       sarama.StringEncoder(v),
				Value:     sarama.StringEncoder(v),
			})
		}
		if err := producer.SendMessages(msgs); err != nil {
			if perrs, ok := err.(sarama.ProducerErrors); ok {
				for _, pe := range perrs {
					fmt.Fprintf(os.Stderr, "sarama_idempotent: %v -> %d: %v\n",
						pe.Msg.Value, pe.Msg.Partition, pe.Err)
				}
			}
			fail("messages %d..%d: %v", start, end-1, err)
		}
		for _, m := range msgs {
			fmt.Fprintf(out, "ack %d %d %v\n", m.Partition, m.Offset, m.Value)
		}
		out.Flush()
		if *interval > 0 {
			time.Sleep(*interval)
		}
	}
	if err := producer.Close(); err != nil {
		fail("close: %v", err)
	}
	out.Flush()
	fmt.Fprintf(os.Stderr, "sarama_idempotent: %d messages acknowledged\n", *n)
}
