// Explanation view: token chips coloured by importance (or by [CLS] attention) and an attention heatmap.
// window.renderExplanation(container, data), where data is mlcore.explain.Explanation.to_dict() as JSON.
// Token text is model input, so it only ever reaches the page through textContent, title or canvas fillText.
(function () {
  "use strict";

  var MAX_TINT = 0.75; // strongest chip tint, so dark text stays readable on it
  var LABEL_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
  var MAX_LABEL_PX = 110; // longer axis labels are cut with an ellipsis
  var MIN_CELL = 8; // px: a heatmap cell at least; past that, the grid scrolls
  var MAX_ROW_PX = 28; // px: a heatmap row at most, for a text of a few tokens
  var HEATMAP_CHROME_PX = 20; // the scroll box's padding and borders, left and right (explain.css), and a pixel

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function isSpecial(token) { return /^\[[A-Z]+\]$/.test(token) || /^<\/?[a-z]+>$/.test(token); }

  function isContinuation(token) { return token.length > 2 && token.slice(0, 2) === "##"; }

  function signed(v) { return (v > 0 ? "+" : "") + v.toFixed(3); }

  function cssVar(node, name, fallback) {
    var value = getComputedStyle(node).getPropertyValue(name).trim();
    return value || fallback;
  }

  // ---------------------------------------------------------------- summary

  function renderSummary(data) {
    var box = el("div", "xp-summary");
    var head = el("div", "xp-prediction");
    head.appendChild(el("span", "badge plain badge-promoted", data.label));
    head.appendChild(el("span", "xp-probability", (data.probability * 100).toFixed(1) + "%"));
    if (data.truncated) {
      head.appendChild(el("span", "badge plain badge-cancelled", "truncated: only the tokens below were read"));
    }
    box.appendChild(head);

    var bars = el("div", "xp-probabilities");
    Object.keys(data.probabilities).forEach(function (name) {
      var p = data.probabilities[name];
      var row = el("div", "xp-prob-row");
      row.appendChild(el("span", "xp-prob-name", name));
      var track = el("span", "xp-prob-track");
      var fill = el("span", "xp-prob-fill" + (name === data.label ? " xp-best" : ""));
      fill.style.width = (p * 100).toFixed(1) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "xp-prob-value", (p * 100).toFixed(1) + "%"));
      bars.appendChild(row);
    });
    box.appendChild(bars);
    return box;
  }

  // ---------------------------------------------------------------- token chips

  function labelNames(data) { return Object.keys(data.probabilities || {}); }

  function quoted(name) { return "“" + name + "”"; }

  // "towards the other label(s)" in words: the one other label by name, or "the other labels".
  function others(data, explained) {
    var rest = labelNames(data).filter(function (n) { return n !== explained; });
    return rest.length === 1 ? quoted(rest[0]) : "the other labels";
  }

  function swatch(className) {
    var sw = el("span", "xp-swatch " + className);
    sw.setAttribute("aria-hidden", "true");
    return sw;
  }

  function renderTokens(data, options) {
    var box = el("div", "xp-tokens-card");
    var explained = data.explained_label || data.label;
    var controls = el("div", "xp-controls");
    var pick = el("label", "xp-explain-label");
    pick.appendChild(document.createTextNode("Explain the label "));
    var select = el("select");
    select.name = "explain-label";
    labelNames(data).forEach(function (name) {
      var option = el("option", null, name + (name === data.label ? " (predicted)" : ""));
      option.value = name;
      option.selected = name === explained;
      select.appendChild(option);
    });
    select.disabled = !(options && options.explain);
    pick.appendChild(select);
    controls.appendChild(pick);
    select.addEventListener("change", function () {
      select.disabled = true;
      legend.textContent = "Explaining " + quoted(select.value) + "…";
      options.explain(select.value).catch(function (e) {
        legend.textContent = "Could not explain " + quoted(select.value) + ": " + e.message;
        select.value = explained;
        select.disabled = false;
      });
    });
    controls.appendChild(el("span", "muted", "Colour by"));
    var name = "xp-mode-" + Math.random().toString(36).slice(2); // one radio group per rendered explanation
    var modes = [
      ["importance", "importance (gradient × input)"],
      ["attention", "attention from " + (data.tokens[0] || "first token")],
    ];
    var radios = modes.map(function (mode, i) {
      var label = el("label", "xp-mode");
      var input = el("input");
      input.type = "radio";
      input.name = name;
      input.value = mode[0];
      input.checked = i === 0;
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + mode[1]));
      controls.appendChild(label);
      return input;
    });
    box.appendChild(controls);

    var line = el("div", "xp-tokens");
    var chips = data.tokens.map(function (token, i) {
      var continuation = isContinuation(token);
      var chip = el("span", "xp-token", continuation ? token.slice(2) : token);
      if (continuation && i > 0) chip.classList.add("xp-cont");
      if (i + 1 < data.tokens.length && isContinuation(data.tokens[i + 1])) chip.classList.add("xp-has-cont");
      if (isSpecial(token)) chip.classList.add("xp-special");
      line.appendChild(chip);
      return chip;
    });
    box.appendChild(line);

    var legend = el("div", "xp-legend muted");
    box.appendChild(legend);

    var maxAttention = Math.max.apply(null, data.cls_attention.concat([1e-12]));

    function paint(mode) {
      chips.forEach(function (chip, i) {
        var token = data.tokens[i];
        chip.classList.remove("xp-pos", "xp-neg", "xp-att");
        if (mode === "importance") {
          var v = data.importance[i];
          chip.classList.add(v < 0 ? "xp-neg" : "xp-pos");
          chip.style.setProperty("--xp-w", String(Math.min(1, Math.abs(v)) * MAX_TINT));
          chip.title = token + ": " + signed(v) + (v < 0 ? " (away from " : " (towards ") + quoted(explained) + ")";
        } else {
          var a = data.cls_attention[i];
          chip.classList.add("xp-att");
          // Scaled to the row's largest weight: the raw weights of a long text are all small.
          chip.style.setProperty("--xp-w", String((a / maxAttention) * MAX_TINT));
          chip.title = token + ": " + (a * 100).toFixed(1) + "% of " + data.tokens[0] + "'s attention";
        }
      });
      legend.textContent = "";
      if (mode === "importance") {
        legend.setAttribute("data-explained", explained);
        legend.appendChild(swatch("xp-pos"));
        legend.appendChild(el("span", "xp-legend-item", "pushes towards " + quoted(explained)));
        legend.appendChild(swatch("xp-neg"));
        legend.appendChild(el("span", "xp-legend-item", "pushes away from it, towards " + others(data, explained)));
        legend.appendChild(document.createTextNode(
          ". Stronger colour, larger effect on the model's probability of " + quoted(explained) +
          " (scaled so the strongest token is ±1). Hover a token for its value."));
      } else {
        legend.textContent = "Last layer's attention from " + data.tokens[0] + " (the token the classifier " +
          "reads), averaged over heads; darker is more. Attention shows where the model looked, not why it decided.";
      }
    }

    radios.forEach(function (input) {
      input.addEventListener("change", function () { if (input.checked) paint(input.value); });
    });
    paint("importance");
    return box;
  }

  // ---------------------------------------------------------------- attention heatmap

  function renderHeatmap(data, container) {
    var tokens = data.tokens;
    var matrix = data.attention;
    var n = tokens.length;
    var fontPx = n <= 48 ? 12 : n <= 80 ? 10 : 9;
    var font = fontPx + "px " + LABEL_FONT;

    var box = el("div", "xp-heatmap-card");
    box.appendChild(el("div", "xp-legend muted",
      "Last layer's attention, averaged over heads: row = from, column = to. Colour is scaled to the largest " +
      "weight. Hover a cell for its value."));
    var scroll = el("div", "xp-heatmap-scroll");
    var canvas = el("canvas", "xp-heatmap");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "Attention heatmap over " + n + " tokens");
    scroll.appendChild(canvas);
    box.appendChild(scroll);
    var tip = el("div", "xp-tip");
    tip.hidden = true;
    box.appendChild(tip);

    var ctx = canvas.getContext("2d");
    ctx.font = font;
    function fit(text) {
      if (ctx.measureText(text).width <= MAX_LABEL_PX) return text;
      while (text.length > 1 && ctx.measureText(text + "…").width > MAX_LABEL_PX) text = text.slice(0, -1);
      return text + "…";
    }
    var labels = tokens.map(fit);
    var labelPx = Math.ceil(Math.max.apply(null, labels.map(function (t) { return ctx.measureText(t).width; })));
    var left = labelPx + 8;
    var top = labelPx + 8; // x labels are drawn vertically, so they need as much room as the widest label
    // Columns share the card's width (so the grid fills it); rows share three quarters of the window's height, at
    // most MAX_ROW_PX each (a short text would otherwise be a wall of colour). Neither goes under MIN_CELL: a long
    // text's grid then scrolls inside its box.
    var style = getComputedStyle(container);
    var inner = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    var room = Math.max(0, inner - HEATMAP_CHROME_PX - left);
    var tall = Math.max(0, window.innerHeight * 0.75 - HEATMAP_CHROME_PX - top);
    var cellW = Math.max(MIN_CELL, Math.floor(room / n));
    var cellH = Math.max(MIN_CELL, Math.min(MAX_ROW_PX, Math.floor(tall / n)));
    var width = left + n * cellW + 1;
    var height = top + n * cellH + 1;

    var ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";

    var accent = cssVar(container, "--accent", "#4f46e5");
    var text = cssVar(container, "--text", "#1d2330");
    var border = cssVar(container, "--border", "#e3e6eb");
    var max = 1e-12;
    matrix.forEach(function (row) { row.forEach(function (w) { if (w > max) max = w; }); });

    function draw(hover) {
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(left, top, n * cellW, n * cellH);
      ctx.fillStyle = accent;
      for (var r = 0; r < n; r++) {
        for (var c = 0; c < n; c++) {
          ctx.globalAlpha = matrix[r][c] / max;
          ctx.fillRect(left + c * cellW, top + r * cellH, cellW, cellH);
        }
      }
      ctx.globalAlpha = 1;
      ctx.strokeStyle = border;
      ctx.strokeRect(left + 0.5, top + 0.5, n * cellW, n * cellH);

      ctx.font = font;
      ctx.textBaseline = "middle";
      for (var i = 0; i < n; i++) {
        var active = hover && (hover.row === i || hover.col === i);
        ctx.fillStyle = active ? accent : text;
        ctx.textAlign = "right";
        ctx.fillText(labels[i], left - 4, top + i * cellH + cellH / 2);
        ctx.save();
        ctx.translate(left + i * cellW + cellW / 2, top - 4);
        ctx.rotate(-Math.PI / 2);
        ctx.textAlign = "left";
        ctx.fillText(labels[i], 0, 0);
        ctx.restore();
      }
      if (hover) {
        ctx.strokeStyle = text;
        ctx.lineWidth = 1.5;
        ctx.strokeRect(left + hover.col * cellW, top + hover.row * cellH, cellW, cellH);
        ctx.lineWidth = 1;
      }
    }

    function cellAt(event) {
      var rect = canvas.getBoundingClientRect();
      var col = Math.floor((event.clientX - rect.left - left) / cellW);
      var row = Math.floor((event.clientY - rect.top - top) / cellH);
      return row >= 0 && row < n && col >= 0 && col < n ? { row: row, col: col } : null;
    }

    var current = null;
    canvas.addEventListener("mousemove", function (event) {
      var hit = cellAt(event);
      if (hit) {
        tip.textContent = tokens[hit.row] + " → " + tokens[hit.col] + ": " + matrix[hit.row][hit.col].toFixed(4);
        tip.style.left = event.clientX + 12 + "px";
        tip.style.top = event.clientY + 12 + "px";
        tip.hidden = false;
      } else {
        tip.hidden = true;
      }
      if ((hit && current && hit.row === current.row && hit.col === current.col) || hit === current) return;
      current = hit;
      draw(hit);
    });
    canvas.addEventListener("mouseleave", function () {
      tip.hidden = true;
      current = null;
      draw(null);
    });

    draw(null);
    return box;
  }

  // ---------------------------------------------------------------- entry point

  // options.explain(label): a promise of the explanation of another label, which then replaces this one.
  function renderExplanation(container, data, options) {
    container.textContent = "";
    container.classList.add("xp");
    if (!data || !data.tokens || !data.tokens.length) {
      container.appendChild(el("p", "muted", "Nothing to explain."));
      return;
    }
    var chosen = options && options.explain ? {
      explain: function (label) {
        return options.explain(label).then(function (next) { renderExplanation(container, next, options); });
      },
    } : null;
    if (data.serving_precision && data.explained_precision && data.serving_precision !== data.explained_precision) {
      container.appendChild(el("p", "notice notice-warning small",
        "Explained with the model's " + data.explained_precision + " weights (gradients need them); it serves " +
        data.serving_precision + ", whose probabilities can differ a little, most on borderline texts."));
    }
    container.appendChild(renderSummary(data));
    container.appendChild(el("h3", "xp-title", "Tokens"));
    container.appendChild(renderTokens(data, chosen));
    container.appendChild(el("h3", "xp-title", "Attention"));
    var heatmap = renderHeatmap(data, container);
    container.appendChild(heatmap);
    // Redrawn to the card's new width when the window is resized (once it settles).
    var pending = null;
    window.addEventListener("resize", function onResize() {
      if (!heatmap.isConnected) { window.removeEventListener("resize", onResize); return; }
      window.clearTimeout(pending);
      pending = window.setTimeout(function () {
        var fresh = renderHeatmap(data, container);
        heatmap.replaceWith(fresh);
        heatmap = fresh;
      }, 150);
    });
  }

  window.renderExplanation = renderExplanation;
})();
