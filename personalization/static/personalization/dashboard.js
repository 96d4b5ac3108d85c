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

  /* Whole-number ticks from 0 to at least top (a round number, so the tallest bar has room): never 0, 0, 1, 1. */
  function wholeTicks(top) {
    top = Math.max(1, Math.ceil(top));
    var count = Math.min(5, top);
    return d3.scale.linear().domain([0, top]).nice(count).ticks(count).filter(function (t) { return t % 1 === 0; });
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
    var top = 0;
    xs.forEach(function (x, i) {
      var values = series.map(function (s) { return (s.values[i] && +s.values[i].y) || 0; });
      top = Math.max(top, stacked ? d3.sum(values) : d3.max(values));
    });
    if (section.hasAttribute("data-money") && operation !== "Count") {
      chart.yAxis.tickFormat(money).tickValues(null);
      if (chart.forceY && top > 0) {
        chart.forceY([0, d3.scale.linear().domain([0, top]).nice(5).domain()[1]]);  // a tick above the tallest bar
      }
      margin.left = Math.max(margin.left, 70);
      chart.margin(margin);
    } else if (operation === "Count" || operation === "Max" || operation === "Min") {
      var ticks = wholeTicks(top);
      chart.yAxis.tickFormat(d3.format(",d")).tickValues(ticks);
      if (chart.forceY) {
        chart.forceY([0, Math.max(1, top, ticks[ticks.length - 1])]);
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

  function draw(id, series, build, after) {
    var svg = document.getElementById(id);
    if (!svg || !series.length) {
      return;
    }
    nv.addGraph(function () {
      var chart = build();
      if (chart.pdPrepare) {
        chart.pdPrepare();  // what depends on the plot's width, again on every resize
      }
      d3.select(svg).datum(series).call(chart);
      if (after) {
        after(chart);
      }
      nv.utils.windowResize(function () {
        if (chart.pdPrepare) {
          chart.pdPrepare();
        }
        chart.update();
        if (after) {
          after(chart);
        }
      });
      return chart;
    });
  }

  function bars(stacked) {
    var chart = nv.models.multiBarChart().x(function (d) { return d.x; }).y(function (d) { return d.y; })
      .reduceXTicks(false).showControls(false).stacked(stacked).groupSpacing(0.2);
    chart.margin({bottom: 60});
    chart.legend.maxKeyLength(40);  // "Treatment (gets coupons)" whole, not "Treatment (gets coup..."
    return chart;
  }

  /* Percent ticks from 0 to top, with as many decimals as their step needs: never 0%, 0%, 1%, 1%. */
  function percentTicks(top) {
    var ticks = d3.scale.linear().domain([0, top]).nice(5).ticks(5);  // nice: the last tick is at or above top
    var step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
    var format = d3.format("." + Math.max(0, -Math.floor(Math.log(step) / Math.LN10 + 1e-9)) + "f");
    return {values: ticks, format: function (v) { return format(v) + "%"; }};
  }

  /* A y axis in percent from 0 to the largest value of `series` (plus `extra`, e.g. an interval's top). */
  function percentAxis(chart, series, extra) {
    var top = d3.max(series, function (s) { return d3.max(s.values, function (v) { return +v.y; }); }) || 0;
    var ticks = percentTicks(Math.max(top * 1.05, extra || 0, 1));  // at least 0% to 1%: all-zero bars get a plain axis
    chart.forceY([0, ticks.values[ticks.values.length - 1]]);
    chart.yAxis.tickValues(ticks.values).tickFormat(ticks.format).showMaxMin(false);
    return chart;
  }

  draw("pd-placements", data.placements.series, function () {
    var chart = bars(false);
    var top = d3.max(data.placements.series, function (s) { return d3.max(s.values, function (v) { return +v.y; }); }) || 0;
    var ticks = wholeTicks(top);
    chart.forceY([0, Math.max(top, ticks[ticks.length - 1])]);
    chart.yAxis.tickFormat(d3.format(",d")).tickValues(ticks).showMaxMin(false);
    return chart;
  });
  draw("pd-ctr", data.placements.ctr, function () {
    var chart = nv.models.discreteBarChart().x(function (d) { return d.x; }).y(function (d) { return d.y; })
      .showValues(true).valueFormat(function (v) { return d3.format(".1f")(v) + "%"; }).color([COLOR]);
    return percentAxis(chart, data.placements.ctr);
  });
  draw("pd-conversion", data.conversion, function () {
    return percentAxis(bars(false), data.conversion);
  });
  draw("pd-promotions", data.promotions || [], function () {
    return percentAxis(bars(false), data.promotions);
  });
  /* Each experiment: its arms' decisive rate as bars (the reference grey), each with its 95% interval
     as a whisker drawn over the bar from nvd3's own scales (again after every redraw). */
  var REFERENCE_COLOR = "#9aa5ad";
  function whiskers(svg, chart, values) {
    var x = chart.discretebar.xScale(), y = chart.discretebar.yScale();
    var plot = d3.select(svg).select("g.nv-discreteBarWithAxes > g");
    if (plot.empty() || !x.rangeBand) {
      return;
    }
    var cap = Math.min(14, x.rangeBand() * 0.3);
    var shown = values.filter(function (v) { return v.low !== null && v.high !== null; });
    var groups = plot.selectAll("g.pd-interval").data(shown, function (v) { return v.x; });
    groups.exit().remove();
    var entered = groups.enter().append("g").attr("class", "pd-interval");
    entered.append("line").attr("class", "pd-interval-span");
    entered.append("line").attr("class", "pd-interval-low");
    entered.append("line").attr("class", "pd-interval-high");
    groups.each(function (v) {
      var centre = x(v.x) + x.rangeBand() / 2, g = d3.select(this);
      g.select(".pd-interval-span").attr({x1: centre, x2: centre, y1: y(v.low), y2: y(v.high)});
      g.select(".pd-interval-low").attr({x1: centre - cap / 2, x2: centre + cap / 2, y1: y(v.low), y2: y(v.low)});
      g.select(".pd-interval-high").attr({x1: centre - cap / 2, x2: centre + cap / 2, y1: y(v.high), y2: y(v.high)});
    });
  }
  (data.experiments || []).forEach(function (experiment) {
    var svg = document.getElementById("pd-experiment-" + experiment.id);
    var values = experiment.series[0].values;
    var highest = d3.max(values, function (v) { return v.high || 0; }) || 0;
    draw("pd-experiment-" + experiment.id, experiment.series, function () {
      var chart = nv.models.discreteBarChart().x(function (d) { return d.x; }).y(function (d) { return d.y; })
        .color(function (d) { return d.reference ? REFERENCE_COLOR : COLOR; })
        .staggerLabels(false).wrapLabels(true).margin({left: 60, bottom: 50, right: 16});
      percentAxis(chart, experiment.series, highest);
      var format = chart.yAxis.tickFormat();
      chart.tooltip.valueFormatter(function (v, i, item) {
        var point = values.filter(function (p) { return item && p.x === item.key; })[0];
        return point && point.low !== null ? format(v) + " (" + point.low + "% – " + point.high + "%)" : format(v);
      });
      chart.dispatch.on("renderEnd.pd", function () { whiskers(svg, chart, values); });
      return chart;
    }, function (chart) { whiskers(svg, chart, values); });
  });
  /* Recall per model version: a tick at each training day (as many as fit), the first and last
     versions' points inside the plot, and room above the best. */
  var DATE = d3.time.format("%d %b %Y"), DATE_SPACE = 96;  // pixels a "29 Nov 2026" label needs, gap included
  function recallTicks(chart) {
    var svg = document.getElementById("pd-recall");
    var margin = chart.margin(), width = svg.getBoundingClientRect().width - margin.left - margin.right;
    var days = {};
    data.recall.forEach(function (s) { s.values.forEach(function (v) { days[DATE(new Date(v.x))] = days[DATE(new Date(v.x))] || v.x; }); });
    var xs = Object.keys(days).map(function (k) { return days[k]; }).sort(d3.ascending);
    var step = Math.max(1, Math.ceil(xs.length * DATE_SPACE / Math.max(width, 1)));
    chart.xAxis.tickValues(xs.filter(function (x, i) { return (xs.length - 1 - i) % step === 0; }));
    var low = xs[0], high = xs[xs.length - 1], pad = Math.max((high - low) * 0.06, 12 * 3600 * 1000);
    // The labels' half width too: the first and last stay inside the chart.
    pad = Math.max(pad, (high - low + 2 * pad) * (DATE_SPACE / 2) / Math.max(width, 1));
    chart.xDomain([low - pad, high + pad]);
  }
  draw("pd-recall", data.recall, function () {
    var top = d3.max(data.recall, function (s) { return d3.max(s.values, function (v) { return v.y; }); }) || 0;
    var chart = nv.models.lineChart().x(function (d) { return d.x; }).y(function (d) { return d.y; })
      .useInteractiveGuideline(true).margin({right: 40}).forceY([0, Math.min(1, top * 1.1)]);
    chart.xAxis.tickFormat(function (d) { return DATE(new Date(d)); }).showMaxMin(false);
    chart.yAxis.tickFormat(d3.format(".2f")).ticks(5).showMaxMin(false);
    chart.pdPrepare = function () { recallTicks(chart); };
    return chart;
  });
}());
