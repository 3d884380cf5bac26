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
