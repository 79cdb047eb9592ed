"""Operating the gateway: admin API, metrics, tracing, hot config, workers, wiredump."""
