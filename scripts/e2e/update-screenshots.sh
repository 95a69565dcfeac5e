#!/usr/bin/env bash
# Regenerates the README's screenshots (docs/screenshots/01-model.png ...
# 07-runs.png, 08-compare-runs.png) by running the wizard and the LoRA / DoRA
# comparison end-to-end specs, which write each step there when
# PEFT_STUDIO_SCREENSHOTS is set. Needs a built tree
# (`npm run build`) and Chromium at /usr/bin/chromium (or PEFT_STUDIO_CHROMIUM).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PEFT_STUDIO_SCREENSHOTS=docs/screenshots
mkdir -p "$PEFT_STUDIO_SCREENSHOTS"
npx playwright test --config e2e/playwright.config.ts --project=browser-mode e2e/wizard.spec.ts e2e/dora-compare.spec.ts "$@"
ls -l "$PEFT_STUDIO_SCREENSHOTS"
