# analysis/small_scale_gap: validation top-1 accuracy (%) per epoch (mean of 2 seeds, band: min to max); circles: test
# Render with `gnuplot val_top1.gp` in this folder: writes val_top1.png, .svg and .pdf from val_top1.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 960,600 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 960,600 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 6.00in,3.75in noenhanced font "sans,7" }
  set output "val_top1.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  set title "analysis/small_scale_gap: validation top-1 accuracy (%) per\nepoch (mean of 2 seeds, band: min to max); circles: test"
  set xlabel "epoch"
  set ylabel "validation top-1 accuracy (%)"
  set key outside bottom center horizontal Left reverse height 1.5
  set xtics 2
  set format x "%.0f"
  set xrange [0:16]
  plot "val_top1.dat" index 0 using 1:3:4 with filledcurves lc rgb "#1f77b4" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 0 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#1f77b4" dt 1 title "class token (mini before 2026-12-01): LN", \
       "val_top1.dat" index 1 using 1:3:4 with filledcurves lc rgb "#ff7f0e" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 1 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#ff7f0e" dt 1 title "class token (mini before 2026-12-01): DyT", \
       "val_top1.dat" index 2 using 1:3:4 with filledcurves lc rgb "#2ca02c" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 2 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#2ca02c" dt 1 title "avg pool + fc_norm (the official runs): LN", \
       "val_top1.dat" index 3 using 1:3:4 with filledcurves lc rgb "#d62728" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 3 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#d62728" dt 1 title "avg pool + fc_norm (the official runs): DyT", \
       "val_top1.dat" index 4 using 1:3:4 with filledcurves lc rgb "#9467bd" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 4 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#9467bd" dt 1 title "avg, alpha0 = 1: DyT", \
       "val_top1.dat" index 5 using 1:3:4 with filledcurves lc rgb "#8c564b" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 5 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#8c564b" dt 1 title "avg, alpha0 = 2: DyT", \
       "val_top1.dat" index 6 using 1:3:4 with filledcurves lc rgb "#e377c2" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 6 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#e377c2" dt 1 title "avg, alpha0 = 4: DyT", \
       "val_top1.dat" index 7 using 1:3:4 with filledcurves lc rgb "#7f7f7f" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 7 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#7f7f7f" dt 1 title "avg, fc_norm alpha0 = 4 (others 0.5): DyT", \
       "val_top1.dat" index 8 using 1:3:4 with filledcurves lc rgb "#bcbd22" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 8 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#bcbd22" dt 1 title "avg, DyT lr x2 (8e-3): DyT", \
       "val_top1.dat" index 9 using 1:3:4 with filledcurves lc rgb "#17becf" fs transparent solid 0.15 noborder notitle, \
       "val_top1.dat" index 9 using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb "#17becf" dt 1 title "avg, 16 epochs: DyT", \
       "val_top1.dat" index 10 using 1:2 with points pt 6 ps 1.5 lc rgb "#1f77b4" title "test split, once after training (one point per seed)", \
       "val_top1.dat" index 11 using 1:2 with points pt 6 ps 1.5 lc rgb "#ff7f0e" title "", \
       "val_top1.dat" index 12 using 1:2 with points pt 6 ps 1.5 lc rgb "#2ca02c" title "", \
       "val_top1.dat" index 13 using 1:2 with points pt 6 ps 1.5 lc rgb "#d62728" title "", \
       "val_top1.dat" index 14 using 1:2 with points pt 6 ps 1.5 lc rgb "#9467bd" title "", \
       "val_top1.dat" index 15 using 1:2 with points pt 6 ps 1.5 lc rgb "#8c564b" title "", \
       "val_top1.dat" index 16 using 1:2 with points pt 6 ps 1.5 lc rgb "#e377c2" title "", \
       "val_top1.dat" index 17 using 1:2 with points pt 6 ps 1.5 lc rgb "#7f7f7f" title "", \
       "val_top1.dat" index 18 using 1:2 with points pt 6 ps 1.5 lc rgb "#bcbd22" title "", \
       "val_top1.dat" index 19 using 1:2 with points pt 6 ps 1.5 lc rgb "#17becf" title "", \
       10 with lines lw 1.5 lc rgb "#808080" dt 2 title "chance (10 classes)"
  set output
}
