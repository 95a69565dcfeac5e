// What a checkpoint folder (DIR/checkpoints/step-N/) holds:
//   the adapter files (PEFT) or, for full fine-tuning, the model folder;
//   prefix_encoder.safetensors  prefix tuning with projection only: the trained
//                           embedding and MLP (the adapter holds PEFT's folded
//                           table, from which they cannot be recovered), so a
//                           resumed run continues bit-exactly (prefix-encoder-file.ts);
//   optimizer.safetensors   AdamW first and second moments of every trainable tensor;
//   trainer_state.json      optimizer step count, scheduler, RNG (dropout counter,
//                           data-order seed and epoch), data position, eval history;
//   COMPLETE                written last: every file's size and sha256.
// A folder without a valid COMPLETE, or whose files do not match it, is not a
// checkpoint (a kill during the write, a damaged disk) and is never resumed from.
import type { TrainMethod } from '../training/config.js';
import type { SchedulerKind } from '../training/schedule.js';

export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const COMPLETE_MARKER = 'COMPLETE';

export const TRAINER_STATE_FORMAT = 'peft-studio-trainer-state';
export const MARKER_FORMAT = 'peft-studio-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface TrainerState {
  format: typeof TRAINER_STATE_FORMAT;
  version: number;
  method: TrainMethod;
  /** optimizer steps taken */
  step: number;
  total_steps: number;
  optimizer: { kind: 'adamw' | 'sgd'; step: number };
  scheduler: { kind: SchedulerKind; base_lr: number; warmup_steps: number; total_steps: number; next_lr: number };
  rng: {
    /** seeds the engine's dropout; dropout masks are keyed by (seed, counter) */
    seed: number;
    dropout_counter: number;
    /** the epoch shuffle is Prng(data_order_seed, epoch) */
    data_order_seed: number;
  };
  data: {
    epoch: number;
    step_in_epoch: number;
    steps_per_epoch: number;
    train_examples: number;
    eval_examples: number;
  };
  eval: {
    last_eval_step: number;
    final_eval_loss: number | null;
    best_eval_loss: number | null;
    /** the step of best_eval_loss (-1: none); absent in checkpoints of older versions */
    best_eval_step?: number;
    /** early stopping's patience count (training/early-stop.ts); absent in checkpoints of older versions: 0 */
    evals_without_improvement?: number;
  };
  final_loss: number | null;
  elapsed_s: number;
  /** the results are bit-exact for a given thread count only */
  threads: number;
}

export interface CompleteMarker {
  format: typeof MARKER_FORMAT;
  version: number;
  step: number;
  written_at: string;
  files: Record<string, { bytes: number; sha256: string }>;
}
