/* The Personalization dashboard's own charts (nvd3 from the static files, data in the page). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("personalization-dashboard-data").textContent);

  function draw(id, series, build) {
    var svg = document.getElementById(id);
    if (!svg || !series.length) {
      return;
    }
    nv.addGraph(function () {
      var chart = build();
      d3.select(svg).datum(series).call(chart);
      nv.utils.windowResize(chart.update);
      return chart;
    });
  }

  function bars(stacked) {
    var chart = nv.models.multiBarChart().x(function (d) { return d.x; }).y(function (d) { return d.y; })
      .reduceXTicks(false).showControls(false).stacked(stacked).groupSpacing(0.2);
    chart.margin({bottom: 60});
    return chart;
  }

  draw("pd-placements", data.placements.series, function () {
    var chart = bars(false);
    chart.yAxis.tickFormat(d3.format(",d"));
    return chart;
  });
  draw("pd-ctr", data.placements.ctr, function () {
    var chart = nv.models.discreteBarChart().x(function (d) { return d.x; }).y(function (d) { return d.y; })
      .showValues(true).valueFormat(d3.format(".2f"));
    chart.yAxis.tickFormat(d3.format(".1f"));
    return chart;
  });
  draw("pd-conversion", data.conversion, function () {
    var chart = bars(false);
    chart.yAxis.tickFormat(d3.format(".1f"));
    return chart;
  });
  draw("pd-recall", data.recall, function () {
    var chart = nv.models.lineChart().x(function (d) { return d.x; }).y(function (d) { return d.y; })
      .useInteractiveGuideline(true).margin({right: 40});
    chart.xAxis.tickFormat(function (d) { return d3.time.format("%Y-%m-%d")(new Date(d)); });
    chart.yAxis.tickFormat(d3.format(".3f"));
    return chart;
  });
}());
