// What each chart shows: its traces (record keys), its axes, and its key on the compare page.
import { hiddenKey, layerKey } from "./vocabulary.js";

// Axis kinds. `positive` axes may switch to log; `fixed` ones never change range.
const linear = (title) => ({ title, type: "linear", positive: false });
const positive = (title) => ({ title, type: "linear", positive: true });
const logAxis = (title) => ({ title, type: "log", positive: true });

export const CHARTS = [
  {
    id: "loss", title: "Loss",
    traces: () => [{ key: "loss", name: "train (batch)" }, { key: "test_loss", name: "held-out" }],
    compare: () => ({ key: "loss", label: "train loss (batch)" }),
    axes: { y: { ...positive("loss"), robust: true } },
  },
  {
    id: "accuracy", title: "Accuracy",
    traces: () => [{ key: "accuracy", name: "train (batch)" }, { key: "test_accuracy", name: "held-out" }],
    compare: () => ({ key: "test_accuracy", label: "held-out accuracy" }),
    axes: { y: { ...linear("accuracy"), range: [0, 1.02] } },
  },
  {
    id: "fidelity", title: "Gradient fidelity: the rule's signal against the true gradient",
    traces: (l) => [
      { key: hiddenKey("cos", l), name: "cosine", axis: "y" },
      { key: hiddenKey("rel_err", l), name: "relative error", axis: "y2" },
      { key: hiddenKey("norm_ratio", l), name: "norm ratio", axis: "y2" },
    ],
    compare: (l) => ({ key: hiddenKey("cos", l), label: `cosine, hidden layer ${l}` }),
    axes: { y: { ...linear("cosine"), range: [-1.05, 1.05], fixed: true }, y2: logAxis("relative error, norm ratio") },
  },
  {
    id: "weights", title: "Weights: norm, std and update ratio",
    traces: (l) => [
      { key: layerKey("w_norm", l), name: "norm", axis: "y" },
      { key: layerKey("w_std", l), name: "std", axis: "y" },
      { key: layerKey("update_ratio", l), name: "update ratio", axis: "y2" },
    ],
    compare: (l) => ({ key: layerKey("w_norm", l), label: `weight norm, layer ${l}` }),
    compareAll: true, // every trace per run on the compare page
    axes: { y: logAxis("norm, std"), y2: logAxis("update ratio") },
  },
  {
    id: "module", title: "Synthetic-gradient module loss",
    traces: (l) => [{ key: hiddenKey("module_loss", l), name: "module loss" }],
    compare: (l) => ({ key: hiddenKey("module_loss", l), label: `module loss, hidden layer ${l}` }),
    axes: { y: positive("module loss") },
    only: (run) => run.config.method === "dni" || run.config.method === "cdni",
  },
];
