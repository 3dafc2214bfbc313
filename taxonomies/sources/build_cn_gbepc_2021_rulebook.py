"""Generate taxonomies/cn_gbepc_2021.yaml: the legacy 2021 catalogue from the 2019 item texts.

    python taxonomies/sources/build_cn_gbepc_2021_rulebook.py [OUT]

Reads, beside this script:

* ``cn_gic_2019_items.csv`` — the 211 level-3 items of the 2019 Green Industry Guidance
  Catalogue with their official explanations (说明), a public transcription [S];
* ``cn_gic_2019_explanations.txt`` — ``pdftotext`` of the official explanations PDF (Annex 2 of
  发改环资〔2019〕293号): an item is ``verified`` when its code and name followed by its 说明 are
  found in it, else ``secondary``. Compared without whitespace and without page furniture (the
  page-number line that ends every page, and any running header or footer; see
  ``official_text``), so an item that runs over a page break is compared as printed;
* ``cn_gbepc_2021_criteria.yaml`` — header, evidence fields, corrections of the transcription,
  the items the 2021 catalogue removed, the activities and criteria per item, and the 2021 items
  not in 2019 (CCUS).

Items not given criteria get one attestation criterion ``cn_gbepc_<code>_met``; so do items with
criteria and ``attest: true`` (their 说明 has conditions the hand-written criteria do not cover).
Items without activities are reached by naming them (``cn_gbepc_2021_item``) — the 2019
catalogue has no GB/T 4754 codes. Removed items fail with a criterion that says so. A correction
re-splits a row's name and 说明 where the transcription cut them elsewhere than the PDF; it may
not change their text. Deterministic output.

The code is ``greenscreen.catalogue_build`` (this script runs it for this catalogue); ``greenscreen
rulebooks build`` builds both China catalogues and validates them as rulebooks.
"""

from __future__ import annotations

import sys
from pathlib import Path

from greenscreen.catalogue_build import CN_GBEPC_2021, script_main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.exit(script_main(CN_GBEPC_2021, HERE, sys.argv[1:]))
