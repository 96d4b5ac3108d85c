/* The Personalization dashboard's own charts (nvd3 from the static files, data in the page), and the
   finishing touches of django-admin-charts' time series, which this page cannot configure otherwise. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("personalization-dashboard-data").textContent);
  var main = document.querySelector(".personalization-dashboard");
  var currency = (main && main.dataset.currency) || "";
  var COLOR = "#417690";  // the admin's own blue: one colour for a chart of a single series
  var SERIES_COLORS = d3.scale.category10().range();
  var DAY = d3.time.format("%d %b");
  var LABEL_SPACE = 58;  // pixels a "29 Nov" label needs, gap included

  function money(value) {
    return currency + d3.format(",.2f")(value);
  }

  /* Every n-th x value, ending on the latest, so that the labels fit the plot's width. */
  function everyNth(xs, width) {
    var step = Math.max(1, Math.ceil(xs.length * LABEL_SPACE / Math.max(width, 1)));
    return xs.filter(function (x, i) { return (xs.length - 1 - i) % step === 0; });
  }

  /* Whole-number ticks from 0 to top: never 0, 0, 1, 1. */
  function wholeTicks(top) {
    top = Math.max(1, Math.ceil(top));
    return d3.scale.linear().domain([0, top]).ticks(Math.min(5, top)).filter(function (t) { return t % 1 === 0; });
  }

  function operationOf(section) {
    var select = section.querySelector("select[name=select_box_operation]");
    return (select && select.value) || section.dataset.operation || "Count";
  }

  /* Readable axes, colours and legend for a django-admin-charts chart about to draw in `node`. */
  function tune(chart, node, section) {
    var series = (node.__data__ || []).filter(function (s) {
      return s.key !== "None" && s.key !== null;  // rows made before the series had names
    });
    node.__data__ = series;
    if (!series.length || !chart.xAxis || !chart.yAxis) {
      return;
    }
    var margin = chart.margin();
    var width = node.getBoundingClientRect().width - margin.left - margin.right;
    var xs = series[0].values.map(function (v) { return v.x; });
    var single = series.length === 1;
    var stacked = !!(chart.multibar && chart.multibar.stacked());

    chart.xAxis.tickFormat(function (d) { return DAY(new Date(+d)); })
      .tickValues(everyNth(xs, width)).showMaxMin(false).rotateLabels(0).staggerLabels(false);
    if (chart.reduceXTicks) {
      chart.reduceXTicks(false);  // it only hides labels; the chosen tick values already fit
    }
    if (single) {
      chart.color([COLOR]);
      if (chart.showLegend) {
        chart.showLegend(false);  // a legend of one unnamed series says nothing
      }
    } else {
      chart.color(SERIES_COLORS);
      if (chart.legend && chart.legend.maxKeyLength) {
        chart.legend.maxKeyLength(40);
      }
      if (chart.showControls) {
        chart.showControls(false);
      }
      // nvd3 keeps a margin set by hand even when its legend wraps onto more lines: make room for them
      var legendWidth = 0;
      series.forEach(function (s) { legendWidth += String(s.key).length * 7 + 32; });
      margin.top = 20 + 22 * Math.ceil(legendWidth / Math.max(width, 1));
      chart.margin(margin);
    }

    chart.yAxis.showMaxMin(false);  // its bold extra label at the top sits on the last tick's
    var operation = operationOf(section);
    if (section.hasAttribute("data-money") && operation !== "Count") {
      chart.yAxis.tickFormat(money).tickValues(null);
      margin.left = Math.max(margin.left, 70);
      chart.margin(margin);
    } else if (operation === "Count" || operation === "Max" || operation === "Min") {
      var top = 0;
      xs.forEach(function (x, i) {
        var values = series.map(function (s) { return (s.values[i] && +s.values[i].y) || 0; });
        top = Math.max(top, stacked ? d3.sum(values) : d3.max(values));
      });
      chart.yAxis.tickFormat(d3.format(",d")).tickValues(wholeTicks(top));
      if (chart.forceY) {
        chart.forceY([0, Math.max(1, top)]);
      }
    }
  }

  /* django-admin-charts' chart scripts end with selection.transition().call(chart): tune the chart
     there, after their own settings and before it draws (also on every redraw). */
  function intercept(proto) {
    var call = proto.call;
    proto.call = function (chart) {
      if (typeof chart === "function" && chart.xAxis && this.node && this.node()) {
        var node = this.node();
        var section = node.closest && node.closest("section.pd-admin-chart");
        if (section && node.tagName.toLowerCase() === "svg") {
          tune(chart, node, section);
        }
      }
      return call.apply(this, arguments);
    };
  }
  intercept(d3.selection.prototype);
  intercept(d3.transition.prototype);

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
      .showValues(true).valueFormat(function (v) { return d3.format(".1f")(v) + "%"; }).color([COLOR]);
    chart.yAxis.tickFormat(function (v) { return d3.format(".0f")(v) + "%"; });
    return chart;
  });
  draw("pd-conversion", data.conversion, function () {
    var chart = bars(false);
    chart.yAxis.tickFormat(function (v) { return d3.format(".0f")(v) + "%"; });
    return chart;
  });
  draw("pd-promotions", data.promotions || [], function () {
    var chart = bars(false);
    chart.yAxis.tickFormat(function (v) { return d3.format(".0f")(v) + "%"; });
    return chart;
  });
  draw("pd-recall", data.recall, function () {
    var chart = nv.models.lineChart().x(function (d) { return d.x; }).y(function (d) { return d.y; })
      .useInteractiveGuideline(true).margin({right: 40}).forceY([0]);
    chart.xAxis.tickFormat(function (d) { return d3.time.format("%d %b %Y")(new Date(d)); }).ticks(5).showMaxMin(false);
    chart.yAxis.tickFormat(d3.format(".2f")).ticks(5).showMaxMin(false);
    return chart;
  });
}());
