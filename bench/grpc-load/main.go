// qkv-grpc-load: the gRPC load generator of `npm run bench`, on etcd's own Go client (clientv3
// 3.4, from Debian's golang-etcd-server-dev; bench/install-grpc-load.sh builds it in GOPATH
// mode). The same program drives qkv and etcd, so neither system's figures are bounded by a
// Node.js client.
//
//	qkv-grpc-load -endpoints 127.0.0.1:2379,... -workload put -clients 64 -conns 8 -seconds 10
//
// Workloads, each a closed loop of -clients goroutines over -conns clientv3.Client instances
// (goroutine i uses instance i % conns; each instance balances over every endpoint):
//
//	put                 Put of a -value-size value to one of -keys keys
//	range-linearizable  Get of one key (linearizable: a ReadIndex round trip)
//	range-serializable  Get of one key, WithSerializable (served by the member it reaches)
//	txn-cas             serializable Get, then Txn(If ModRevision == read).Then(Put)
//	watch               -watchers watchers on the prefix watch/ (spread over -conns instances,
//	                    each instance's watchers share its one watch stream, as clientv3 does),
//	                    -puts sequential puts 5 ms apart; latency from each put's acknowledgement
//	                    to each watcher's event (0 when the event came before the ack)
//
// Output on stdout, one JSON object a line: {"event":"measure-start"} when the measured window
// opens (after -warmup seconds of the same load, or once every watcher is created),
// {"event":"measure-end"} when it closes, then the result: ops, ops_per_sec, errors, p50_ms,
// p99_ms, p999_ms (and cas_failed for txn-cas). The caller samples server CPU at the markers.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc/grpclog"
)

type result struct {
	Workload  string  `json:"workload"`
	Clients   int     `json:"clients"`
	Conns     int     `json:"conns"`
	Watchers  int     `json:"watchers,omitempty"`
	Ops       int     `json:"ops"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Errors    int64   `json:"errors"`
	CasFailed int64   `json:"cas_failed,omitempty"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	// Latency at 50, 75, 90, 95, 99, 99.9 % (ms), for plots.
	Percentiles []float64 `json:"percentiles_ms"`
	FirstError  string    `json:"first_error,omitempty"`
}

var stdoutMu sync.Mutex

func emit(v interface{}) {
	b, _ := json.Marshal(v)
	stdoutMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	stdoutMu.Unlock()
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "qkv-grpc-load: "+format+"\n", a...)
	os.Exit(2)
}

// pct follows bench/load.ts's summarize: the value at floor(p/100 * n) of the sorted latencies.
func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Floor(p / 100 * float64(len(sorted))))
	if i > len(sorted)-1 {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func summarize(r *result, lat []float64, seconds float64) {
	sort.Float64s(lat)
	r.Ops = len(lat)
	r.Seconds = seconds
	r.OpsPerSec = float64(len(lat)) / seconds
	r.P50, r.P99, r.P999 = pct(lat, 50), pct(lat, 99), pct(lat, 99.9)
	for _, p := range []float64{50, 75, 90, 95, 99, 99.9} {
		r.Percentiles = append(r.Percentiles, pct(lat, p))
	}
	// NaN is not JSON: no samples is 0 ops and -1 latencies.
	if len(lat) == 0 {
		r.P50, r.P99, r.P999 = -1, -1, -1
		r.Percentiles = nil
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func main() {
	endpoints := flag.String("endpoints", "", "comma-separated client endpoints (host:port or http://host:port)")
	workload := flag.String("workload", "put", "put | range-linearizable | range-serializable | txn-cas | watch")
	clients := flag.Int("clients", 1, "concurrent requests (closed loop)")
	conns := flag.Int("conns", 1, "clientv3.Client instances the clients share")
	seconds := flag.Float64("seconds", 10, "measured seconds")
	warmup := flag.Float64("warmup", -1, "unmeasured seconds of the same load first (default min(1, seconds/5))")
	keys := flag.Int("keys", 10000, "key space: keys bench/000000 ...")
	valueSize := flag.Int("value-size", 256, "bytes per value")
	watchers := flag.Int("watchers", 1000, "watch: watchers on the prefix")
	puts := flag.Int("puts", 500, "watch: sequential puts")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request deadline")
	keepScheme := flag.Bool("keep-scheme", false, "dial endpoints as given: clientv3 3.4 then sends an http:// URL as the HTTP/2 :authority")
	flag.Parse()
	if *endpoints == "" {
		fail("-endpoints is required")
	}
	if *conns < 1 || *clients < 1 {
		fail("-clients and -conns must be at least 1")
	}
	if *warmup < 0 {
		*warmup = math.Min(1, *seconds/5)
	}
	// A lighter load generator: the heap is small, so collect it less often than GOGC=100 would.
	debug.SetGCPercent(400)
	// clientv3 logs every reconnect through grpclog; keep stderr for our own errors.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2WithVerbosity(nopWriter{}, nopWriter{}, os.Stderr, 0))
	eps := strings.Split(*endpoints, ",")
	// clientv3 3.4 uses an endpoint string as the address, and grpc-go the address as the
	// :authority; host:port is what any gRPC client sends (qkv serves a URL authority too,
	// through its rewriting path, src/grpc/h2_authority.ts).
	if !*keepScheme {
		for i, e := range eps {
			eps[i] = strings.TrimPrefix(e, "http://")
		}
	}
	cls := make([]*clientv3.Client, *conns)
	for i := range cls {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:          eps,
			DialTimeout:        10 * time.Second,
			MaxCallSendMsgSize: 2 * 1024 * 1024,
		})
		if err != nil {
			fail("connecting to %v: %v", eps, err)
		}
		defer c.Close()
		cls[i] = c
	}
	value := strings.Repeat("v", *valueSize)
	key := func(i int64) string { return fmt.Sprintf("bench/%06d", i%int64(*keys)) }
	r := result{Workload: *workload, Clients: *clients, Conns: *conns}

	if *workload == "watch" {
		r.Watchers = *watchers
		watch(&r, cls, *watchers, *puts, *timeout)
		emit(r)
		return
	}

	var op func(c *clientv3.Client, i int64) error
	var casFailed int64
	switch *workload {
	case "put":
		op = func(c *clientv3.Client, i int64) error {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			defer cancel()
			_, err := c.Put(ctx, key(i), value)
			return err
		}
	case "range-linearizable", "range-serializable":
		serializable := *workload == "range-serializable"
		op = func(c *clientv3.Client, i int64) error {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			defer cancel()
			var err error
			if serializable {
				_, err = c.Get(ctx, key(i*7919), clientv3.WithSerializable())
			} else {
				_, err = c.Get(ctx, key(i*7919))
			}
			return err
		}
	case "txn-cas":
		op = func(c *clientv3.Client, i int64) error {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			defer cancel()
			k := key(i * 31)
			got, err := c.Get(ctx, k, clientv3.WithSerializable())
			if err != nil {
				return err
			}
			var mod int64
			if len(got.Kvs) > 0 {
				mod = got.Kvs[0].ModRevision
			}
			t, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", mod)).Then(clientv3.OpPut(k, value)).Commit()
			if err == nil && !t.Succeeded {
				atomic.AddInt64(&casFailed, 1)
			}
			return err
		}
	default:
		fail("unknown workload %q", *workload)
	}

	start := time.Now()
	warmUntil := start.Add(time.Duration(*warmup * float64(time.Second)))
	end := warmUntil.Add(time.Duration(*seconds * float64(time.Second)))
	var n, errors int64
	var firstErr atomic.Value
	lats := make([][]float64, *clients)
	var wg sync.WaitGroup
	var markStart sync.Once
	for g := 0; g < *clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c := cls[g%len(cls)]
			var mine []float64
			for {
				t := time.Now()
				if !t.Before(end) {
					break
				}
				if !t.Before(warmUntil) {
					markStart.Do(func() { emit(map[string]string{"event": "measure-start"}) })
				}
				err := op(c, atomic.AddInt64(&n, 1)-1)
				if err != nil {
					if !t.Before(warmUntil) {
						atomic.AddInt64(&errors, 1)
					}
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if !t.Before(warmUntil) {
					mine = append(mine, ms(time.Since(t)))
				}
			}
			lats[g] = mine
		}(g)
	}
	wg.Wait()
	emit(map[string]string{"event": "measure-end"})
	var all []float64
	for _, l := range lats {
		all = append(all, l...)
	}
	// The window is measured from its first start to the last completion, as closedLoop does.
	summarize(&r, all, time.Since(warmUntil).Seconds())
	r.Errors = errors
	r.CasFailed = casFailed
	if e, ok := firstErr.Load().(string); ok {
		r.FirstError = e
	}
	emit(r)
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// watch: watchers on watch/ over the client instances, then sequential puts from one more
// client; the latency of each event is the time since its put was acknowledged.
func watch(r *result, cls []*clientv3.Client, watchers, puts int, timeout time.Duration) {
	type mark struct {
		acked bool
		at    time.Time
	}
	var mu sync.Mutex
	marks := make(map[string]mark, puts)
	var latMu sync.Mutex
	lat := make([]float64, 0, watchers*puts)
	var delivered int64
	var created sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done sync.WaitGroup
	for w := 0; w < watchers; w++ {
		created.Add(1)
		done.Add(1)
		ch := cls[w%len(cls)].Watch(ctx, "watch/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		go func() {
			defer done.Done()
			first := true
			for resp := range ch {
				if first && resp.Created {
					first = false
					created.Done()
				}
				now := time.Now()
				for _, ev := range resp.Events {
					mu.Lock()
					m, ok := marks[string(ev.Kv.Value)]
					mu.Unlock()
					if !ok {
						continue
					}
					d := 0.0
					if m.acked {
						d = ms(now.Sub(m.at))
					}
					latMu.Lock()
					lat = append(lat, d)
					latMu.Unlock()
					atomic.AddInt64(&delivered, 1)
				}
			}
		}()
	}
	waited := make(chan struct{})
	go func() { created.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(60 * time.Second):
		fail("watchers not created within 60 s")
	}
	writer, err := clientv3.New(clientv3.Config{Endpoints: cls[0].Endpoints(), DialTimeout: 10 * time.Second})
	if err != nil {
		fail("writer: %v", err)
	}
	defer writer.Close()
	emit(map[string]string{"event": "measure-start"})
	started := time.Now()
	var errors int64
	for i := 0; i < puts; i++ {
		v := fmt.Sprintf("v%d", i)
		mu.Lock()
		marks[v] = mark{}
		mu.Unlock()
		pctx, pcancel := context.WithTimeout(context.Background(), timeout)
		_, err := writer.Put(pctx, fmt.Sprintf("watch/%d", i%10), v)
		pcancel()
		if err != nil {
			errors++
			r.FirstError = err.Error()
		} else {
			mu.Lock()
			marks[v] = mark{acked: true, at: time.Now()}
			mu.Unlock()
		}
		time.Sleep(5 * time.Millisecond)
	}
	expected := int64(watchers) * int64(puts-int(errors))
	drain := time.Now().Add(10 * time.Second)
	for atomic.LoadInt64(&delivered) < expected && time.Now().Before(drain) {
		time.Sleep(10 * time.Millisecond)
	}
	emit(map[string]string{"event": "measure-end"})
	seconds := time.Since(started).Seconds()
	latMu.Lock()
	got := append([]float64(nil), lat...)
	latMu.Unlock()
	summarize(r, got, seconds)
	// Events missed, as the gateway row counts them, plus failed puts.
	r.Errors = int64(watchers)*int64(puts) - int64(len(got))
	if r.Errors < 0 {
		r.Errors = 0
	}
	cancel()
}
