"""The PyTorch side of the cross-check (run where torch, transformers and peft
are installed; no GPU needed). For every case prepared by prepare.mjs:

  1. loads the tiny model with transformers (float32, eager attention) and
     records the base loss on the batch (Hugging Face loss: labels shifted
     inside, mean over non-ignored tokens);
  2. loads OUR adapter with PeftModel.from_pretrained, unchanged, and records
     the loss, the gradient of every LoRA tensor, and the last-token logits of
     the prompt;
  3. creates a LoRA adapter with peft itself (gaussian init, B made non-zero),
     saves it with save_pretrained and records its loss, so our importer can
     be checked against PEFT's own files.

Usage: python3 pytorch_check.py CASES_DIR OUT_DIR
Writes OUT_DIR/pytorch-reference.json and OUT_DIR/peft-saved.tar.
"""
import json
import os
import sys
import tarfile

import torch
import peft
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
spec = json.load(open(os.path.join(root, "cases.json")))
batch = spec["batch"]
ids = torch.tensor(batch["inputIds"])
mask = torch.tensor(batch["attentionMask"])
labels = torch.tensor(batch["labels"])
prompt = torch.tensor([spec["prompt"]])


def load(path):
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    return m


def loss_of(m):
    return m(input_ids=ids, attention_mask=mask, labels=labels).loss


def engine_name(n):
    n = n.replace("base_model.model.", "", 1).replace(".default", "")
    return n


result = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "cases": {}}
saved = []
for case in spec["cases"]:
    name = case["name"]
    model_dir = os.path.join(root, case["model"])
    r = {}
    base = load(model_dir)
    with torch.no_grad():
        r["base_loss"] = loss_of(base).item()
        r["base_prompt_logits"] = base(input_ids=prompt).logits[0, -1].tolist()
    pm = PeftModel.from_pretrained(base, os.path.join(root, case["adapter"]), is_trainable=True)
    pm.eval()  # dropout is 0 anyway; eval keeps it deterministic
    loss = loss_of(pm)
    loss.backward()
    r["adapter_loss"] = loss.item()
    r["grads"] = {engine_name(n): p.grad.flatten().tolist() for n, p in pm.named_parameters() if p.requires_grad}
    with torch.no_grad():
        r["adapter_prompt_logits"] = pm(input_ids=prompt).logits[0, -1].tolist()

    torch.manual_seed(7)
    fresh = load(model_dir)
    pl = case["peftLora"]
    cfg = LoraConfig(r=pl["rank"], lora_alpha=pl["alpha"], target_modules=pl["targets"], use_rslora=pl["rslora"],
                     layers_to_transform=pl["layers"], init_lora_weights="gaussian", lora_dropout=0.0, task_type="CAUSAL_LM")
    pm2 = get_peft_model(fresh, cfg)
    with torch.no_grad():
        for n, p in pm2.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.05)
    pm2.eval()
    save_dir = os.path.join(out, "peft-saved", name)
    pm2.save_pretrained(save_dir)
    saved.append(name)
    with torch.no_grad():
        r["peft_saved_loss"] = loss_of(pm2).item()
        merged = pm2.merge_and_unload()
        r["peft_saved_merged_loss"] = loss_of(merged).item()
    result["cases"][name] = r
    print(f"{name}: base {r['base_loss']:.6f} ours {r['adapter_loss']:.6f} peft-saved {r['peft_saved_loss']:.6f}", flush=True)

with open(os.path.join(out, "pytorch-reference.json"), "w") as f:
    json.dump(result, f)
with tarfile.open(os.path.join(out, "peft-saved.tar"), "w") as t:
    t.add(os.path.join(out, "peft-saved"), arcname="peft-saved")
print("done", flush=True)
