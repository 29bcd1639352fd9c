module cowork-ingest/benches/collector/loadclient

go 1.26
