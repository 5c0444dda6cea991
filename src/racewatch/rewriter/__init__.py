"""The bytecode rewriter: instrumentation pass, site ids, cache and import hook."""
