// Command loadclient posts OTLP/HTTP request bodies to one URL over keep-alive HTTP/1.1
// connections and prints what came back, as one JSON object on stdout. It is the load client of
// benches/collector/run.py: the same client, bodies and connections for our edge and for the
// OpenTelemetry Collector. Standard library only.
//
//	loadclient -url http://127.0.0.1:4318/v1/logs -bodies list.txt -content-type application/x-protobuf \
//	    -conns 32 -warmup 2s -duration 10s
//	loadclient ... -requests 1600          # exactly 1600 requests, bodies in list order, round-robin
//
// list.txt has one "PATH EVENTS" line per body. With -duration, the client sends for -warmup
// first (not counted) and then for -duration; it prints the counted window's requests, events
// (of 200 answers only), statuses, and the window's start and end as Unix nanoseconds, so the
// caller can line other readings up with it. With -pid, it reads that server process's CPU time
// (utime+stime of /proc/PID/stat, all threads, in clock ticks) at the window's start and end.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type body struct {
	data   []byte
	events int64
}

func readList(path string) ([]body, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []body
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("bad line %q: want PATH EVENTS", line)
		}
		n, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad event count in %q", line)
		}
		data, err := os.ReadFile(line[:i])
		if err != nil {
			return nil, err
		}
		out = append(out, body{data, n})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no bodies", path)
	}
	return out, sc.Err()
}

func main() {
	url := flag.String("url", "", "endpoint, e.g. http://127.0.0.1:4318/v1/logs")
	list := flag.String("bodies", "", `file of "PATH EVENTS" lines`)
	ctype := flag.String("content-type", "application/x-protobuf", "Content-Type")
	auth := flag.String("auth", "", "Authorization header value (optional)")
	conns := flag.Int("conns", 32, "connections, one request in flight each")
	warmup := flag.Duration("warmup", 2*time.Second, "uncounted time before the window")
	duration := flag.Duration("duration", 10*time.Second, "counted window")
	requests := flag.Int64("requests", 0, "send exactly this many requests instead (no window)")
	pid := flag.Int("pid", 0, "server process whose CPU time to read at the window's edges")
	flag.Parse()
	bodies, err := readList(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadclient:", err)
		os.Exit(2)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        *conns,
		MaxIdleConnsPerHost: *conns,
		MaxConnsPerHost:     *conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var counting atomic.Bool
	var stop atomic.Bool
	var next atomic.Int64
	var reqs, events, errs atomic.Int64
	var mu sync.Mutex
	statuses := map[string]int64{}
	firstErr := ""

	one := func(i int64) {
		b := bodies[i%int64(len(bodies))]
		req, _ := http.NewRequest("POST", *url, bytes.NewReader(b.data))
		req.Header.Set("Content-Type", *ctype)
		if *auth != "" {
			req.Header.Set("Authorization", *auth)
		}
		req.ContentLength = int64(len(b.data))
		resp, err := client.Do(req)
		count := counting.Load() || *requests > 0
		key := ""
		if err != nil {
			key = "error"
			errs.Add(1)
			mu.Lock()
			if firstErr == "" {
				firstErr = err.Error()
			}
			mu.Unlock()
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			key = strconv.Itoa(resp.StatusCode)
			if count && resp.StatusCode == 200 {
				events.Add(b.events)
			}
		}
		if count {
			reqs.Add(1)
			mu.Lock()
			statuses[key]++
			mu.Unlock()
		}
	}

	var wg sync.WaitGroup
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := next.Add(1) - 1
				if *requests > 0 && i >= *requests {
					return
				}
				one(i)
			}
		}()
	}
	var start, end time.Time
	var cpu0, cpu1 int64
	if *requests > 0 {
		start = time.Now()
		cpu0 = cpuTicks(*pid)
		wg.Wait()
		cpu1 = cpuTicks(*pid)
		end = time.Now()
	} else {
		time.Sleep(*warmup)
		cpu0 = cpuTicks(*pid)
		start = time.Now()
		counting.Store(true)
		time.Sleep(*duration)
		counting.Store(false)
		end = time.Now()
		cpu1 = cpuTicks(*pid)
		stop.Store(true)
		wg.Wait()
	}
	secs := end.Sub(start).Seconds()
	out := map[string]any{
		"requests":  reqs.Load(),
		"events":    events.Load(),
		"errors":    errs.Load(),
		"statuses":  statuses,
		"seconds":   secs,
		"start_ns":  start.UnixNano(),
		"end_ns":    end.UnixNano(),
		"first_err": firstErr,
		"cpu_ticks": cpu1 - cpu0,
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

// cpuTicks is utime+stime of a process (all its threads, living and exited), in clock ticks;
// 0 without a pid.
func cpuTicks(pid int) int64 {
	if pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces: the fields after it start past the last ')'.
	rest := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	// rest[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, _ := strconv.ParseInt(rest[11], 10, 64)
	st, _ := strconv.ParseInt(rest[12], 10, 64)
	return ut + st
}
