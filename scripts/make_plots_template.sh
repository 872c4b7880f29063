#!/usr/bin/env bash
# Rebuild .dvc/plots-template.html: DVC's HTML page for `dvc plots show/diff`, with the Vega
# libraries inlined instead of loaded from a CDN, so the plots render offline. The versions are
# the ones dvc-render's own page asks for (dvc_render/vega.py); the packages come from the npm
# registry. Run it when DVC moves to new versions: bash scripts/make_plots_template.sh
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2)
files=(vega.min.js vega-lite.min.js vega-embed.min.js)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=.dvc/plots-template.html
{
  echo '<!DOCTYPE html>'
  echo '<html>'
  echo '<head>'
  echo '    {refresh_tag}'
  echo '    <meta charset="utf-8">'
  echo '    <title>DVC Plot</title>'
  for i in "${!packages[@]}"; do
    (cd "$work" && npm pack --silent "${packages[$i]}" > /dev/null && mkdir -p "$i" && tar xzf ./*"${packages[$i]#*@}".tgz -C "$i" && rm ./*.tgz)
    echo "    <!-- ${packages[$i]} (npm), build/${files[$i]}; its licence:"
    sed 's/--/- -/g' "$work/$i/package/LICENSE"
    echo '    -->'
    echo '    <script>'
    cat "$work/$i/package/build/${files[$i]}"
    echo
    echo '    </script>'
  done
  echo '    <style>'
  echo '        table { border-spacing: 15px; }'
  echo '    </style>'
  echo '</head>'
  echo '<body>'
  echo '    {plot_divs}'
  echo '</body>'
  echo '</html>'
} > "$out"
echo "wrote $out ($(wc -c < "$out") bytes)"
