// Every chart's Plotly config: no cloud, no Chart Studio, a PNG download of the chart.
export const CHART_CONFIG = {
  responsive: true,
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
