#!/usr/bin/env bash
# The code space of HashNet with its own mechanism only and with HSWD added (the HSWD paper's Fig. 2), on
# the digits study protocol with 2-bit codes: two fits, then the picture (docs/code_space_digits.png).
#   bash experiments/study/code_space.sh [RUNS_ROOT]        # default runs/code_space; ~2 CPU-minutes
set -euo pipefail
root="${1:-runs/code_space}"
fit() {
  hashbench fit --config experiments/demo.yaml --config experiments/digits/hashnet.yaml \
    --config experiments/study/protocol.yaml --model.head.init_args.bits 2 --trainer.logger false \
    --trainer.default_root_dir "$root" "$@"
}
fit --run_name hashnet
fit --run_name hashnet_hswd --model.quantizer hashbench.quantizers.HSWD --model.quantization_weight 0.1
python -m hashbench.tracking.codes_figure "$(ls -d "$root"/hashnet/*/ | tail -1)" \
  "$(ls -d "$root"/hashnet_hswd/*/ | tail -1)" --title HashNet --title HashNet-C --out docs/code_space_digits.png
