"""Override lists that scale the baseline company down, shared by the test modules."""

# A tenth of the baseline's lead volume, every source and mechanism still on.
TENTH_VOLUME = (
    "sources.inbound.leads_per_month=250",
    "sources.events.leads_per_month=40",
    "sources.partner.leads_per_month=8",
)
# ... and a tenth of its team: one SDR, one AE and one hire.
TENTH = (
    *TENTH_VOLUME,
    "handoff.sdr.count=1",
    "sales.ae.count=1",
    "sales.ae.hires=[{date=2027-04-01, count=1}]",
)
