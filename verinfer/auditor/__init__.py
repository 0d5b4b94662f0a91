"""`verinfer audit`: re-verify any request from the chain and the content store alone.

    auditor = Auditor(Protocol.connect(rpc_url, manifest), open_store(), trusted_root_pem=pem)
    report = auditor.audit(request_id)      # AuditReport: one Claim (PASS / FAIL / N/A + why) per claim
    report.ok, report.claim("proof.onchain")

See docs/audit.md for what each check proves and what it cannot.
"""

from verinfer.auditor.claims import AuditReport, Claim, Verdict
from verinfer.auditor.core import AuditContext, AuditError, Auditor, missing_vk_constants, vk_constants

__all__ = ["AuditContext", "AuditError", "AuditReport", "Auditor", "Claim", "Verdict", "missing_vk_constants",
           "vk_constants"]
