"""Generate taxonomies/cn_gfsp_2025.yaml: all 271 items of the 2025 catalogue as a rulebook.

    python taxonomies/sources/build_cn_gfsp_2025_rulebook.py [OUT]

Reads, beside this script:

* ``cn_gfsp_2025_items.csv`` — every item and GB/T 4754 row with the verbatim 条件/标准, 备注 and
  GHG mark (built and checked against the official text by build_cn_gfsp_2025_items.py);
* ``cn_gfsp_2025_activity_map.csv`` — greenscreen activity ↔ item (many-to-many) with the basis;
* ``cn_gfsp_2025_criteria.yaml`` — the rulebook header, the evidence fields and the hand-written
  criteria per item (measured or attestation; ``[]`` where being in scope is the test);
* ``cn_gfsp_2025_remark_requirements.csv`` — the items (and GB/T rows) whose 备注 states a
  requirement or an exemption that the 条件/标准 do not (hand-maintained; see the README).

Every other item gets one attestation criterion on a generated field ``cn_gfsp_<code>_met``.
An item listed as ``requirement`` gets a second one, ``remark`` on ``cn_gfsp_<code>_remark_met``,
quoting the 备注 verbatim and, when the 备注 is on some rows only, in force on those rows
(``applies_to``); an ``exemption`` is added to the threshold of the item's attestation.
Scope: the mapped activities, the GB/T codes of the item's rows and the codes its 备注 name
("包括但不限于 5431 普通货物道路运输、…"); an item with a row that names no code (e.g. 4.3.2
各用电、用热（冷）行业) lets an activity match whatever the industry code; an item with neither
activities nor codes is reached by naming it (``cn_gfsp_2025_item``). The output is
deterministic: rerunning it on unchanged inputs rewrites the same bytes (a test checks this).

The code is ``greenscreen.catalogue_build`` (this script runs it for this catalogue); ``greenscreen
rulebooks build`` builds both China catalogues and validates them as rulebooks.
"""

from __future__ import annotations

import sys
from pathlib import Path

from greenscreen.catalogue_build import CN_GFSP_2025, script_main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.exit(script_main(CN_GFSP_2025, HERE, sys.argv[1:]))
