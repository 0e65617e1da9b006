# analysis/small_scale_gap: training loss (mean of 2 seeds, band: min to max)
# Render with `gnuplot train_loss.gp` in this folder: writes train_loss.png, .svg and .pdf from train_loss.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 960,600 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 960,600 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 6.00in,3.75in noenhanced font "sans,7" }
  set output "train_loss.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  set title "analysis/small_scale_gap: training loss (mean of 2 seeds, band: min to max)"
  set xlabel "training step (optimizer updates)"
  set ylabel "training loss (cross-entropy, label smoothing 0.1)"
  set key outside bottom center horizontal Left reverse height 1.5
  
  plot "train_loss.dat" index 0 using 1:3:4 with filledcurves lc rgb "#1f77b4" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 0 using 1:2 with lines lw 2 lc rgb "#1f77b4" dt 1 title "class token (mini before 2026-12-01): LN", \
       "train_loss.dat" index 1 using 1:3:4 with filledcurves lc rgb "#ff7f0e" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 1 using 1:2 with lines lw 2 lc rgb "#ff7f0e" dt 1 title "class token (mini before 2026-12-01): DyT", \
       "train_loss.dat" index 2 using 1:3:4 with filledcurves lc rgb "#2ca02c" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 2 using 1:2 with lines lw 2 lc rgb "#2ca02c" dt 1 title "avg pool + fc_norm (the official runs): LN", \
       "train_loss.dat" index 3 using 1:3:4 with filledcurves lc rgb "#d62728" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 3 using 1:2 with lines lw 2 lc rgb "#d62728" dt 1 title "avg pool + fc_norm (the official runs): DyT", \
       "train_loss.dat" index 4 using 1:3:4 with filledcurves lc rgb "#9467bd" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 4 using 1:2 with lines lw 2 lc rgb "#9467bd" dt 1 title "avg, alpha0 = 1: DyT", \
       "train_loss.dat" index 5 using 1:3:4 with filledcurves lc rgb "#8c564b" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 5 using 1:2 with lines lw 2 lc rgb "#8c564b" dt 1 title "avg, alpha0 = 2: DyT", \
       "train_loss.dat" index 6 using 1:3:4 with filledcurves lc rgb "#e377c2" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 6 using 1:2 with lines lw 2 lc rgb "#e377c2" dt 1 title "avg, alpha0 = 4: DyT", \
       "train_loss.dat" index 7 using 1:3:4 with filledcurves lc rgb "#7f7f7f" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 7 using 1:2 with lines lw 2 lc rgb "#7f7f7f" dt 1 title "avg, fc_norm alpha0 = 4 (others 0.5): DyT", \
       "train_loss.dat" index 8 using 1:3:4 with filledcurves lc rgb "#bcbd22" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 8 using 1:2 with lines lw 2 lc rgb "#bcbd22" dt 1 title "avg, DyT lr x2 (8e-3): DyT", \
       "train_loss.dat" index 9 using 1:3:4 with filledcurves lc rgb "#17becf" fs transparent solid 0.15 noborder notitle, \
       "train_loss.dat" index 9 using 1:2 with lines lw 2 lc rgb "#17becf" dt 1 title "avg, 16 epochs: DyT"
  set output
}
