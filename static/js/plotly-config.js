// A touch screen without a mouse (a phone, a tablet): Plotly shows its toolbar there all the
// time, over the chart's title and legend, and its buttons serve a mouse. No toolbar there;
// with a mouse it appears on hover.
export const TOUCH_ONLY = window.matchMedia("(hover: none)").matches || window.matchMedia("(pointer: coarse)").matches;

// Every chart's Plotly config: no cloud, no Chart Studio, a PNG download of the chart.
export const CHART_CONFIG = {
  responsive: true,
  displayModeBar: TOUCH_ONLY ? false : "hover",
  displaylogo: false,
  showSendToCloud: false,
  showEditInChartStudio: false,
  showLink: false,
  modeBarButtonsToRemove: ["sendDataToCloud", "lasso2d", "select2d"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

// Plotly's default colour cycle, set explicitly so a smoothed line and its raw line match
// and a sweep's group has one colour on every chart and in its table.
export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                        "#7f7f7f", "#bcbd22", "#17becf"];
