"""Wave preparation (the original's processSmsWaveFiles): markets, eligible fans, the fair
per-market selection, codes per market, the delivery files and the status the admin reads."""
