# analysis/alpha_tracking (default, seed 0): DyT's alpha against 1/std of its input (Fig. 8)
# Render with `gnuplot alpha_tracking_default.gp` in this folder: writes alpha_tracking_default.png, .svg and .pdf from alpha_tracking_default.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 1280,520 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 1280,520 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 8.00in,3.25in noenhanced font "sans,7" }
  set output "alpha_tracking_default.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  
  set multiplot layout 1,2 title "analysis/alpha_tracking (default, seed 0): DyT's alpha against 1/std of its input (Fig. 8)"
  set palette defined (0 "#2040c0", 1 "#e04020")
  unset colorbox
  set title "alpha (solid) and 1/std of the input (dashed) over training; blue: first layer, red: last"
  set xlabel "training step (optimizer updates)"
  set ylabel "alpha, 1/std(input)"
  set key top right
  plot "alpha_tracking_default.dat" index 0 using 1:2 with lines lw 1.5 lc palette frac 0.000 title "alpha", \
       "alpha_tracking_default.dat" index 0 using 1:3 with lines lw 1 dt 2 lc palette frac 0.000 title "1/std", \
       "alpha_tracking_default.dat" index 1 using 1:2 with lines lw 1.5 lc palette frac 0.125 title "", \
       "alpha_tracking_default.dat" index 1 using 1:3 with lines lw 1 dt 2 lc palette frac 0.125 title "", \
       "alpha_tracking_default.dat" index 2 using 1:2 with lines lw 1.5 lc palette frac 0.250 title "", \
       "alpha_tracking_default.dat" index 2 using 1:3 with lines lw 1 dt 2 lc palette frac 0.250 title "", \
       "alpha_tracking_default.dat" index 3 using 1:2 with lines lw 1.5 lc palette frac 0.375 title "", \
       "alpha_tracking_default.dat" index 3 using 1:3 with lines lw 1 dt 2 lc palette frac 0.375 title "", \
       "alpha_tracking_default.dat" index 4 using 1:2 with lines lw 1.5 lc palette frac 0.500 title "", \
       "alpha_tracking_default.dat" index 4 using 1:3 with lines lw 1 dt 2 lc palette frac 0.500 title "", \
       "alpha_tracking_default.dat" index 5 using 1:2 with lines lw 1.5 lc palette frac 0.625 title "", \
       "alpha_tracking_default.dat" index 5 using 1:3 with lines lw 1 dt 2 lc palette frac 0.625 title "", \
       "alpha_tracking_default.dat" index 6 using 1:2 with lines lw 1.5 lc palette frac 0.750 title "", \
       "alpha_tracking_default.dat" index 6 using 1:3 with lines lw 1 dt 2 lc palette frac 0.750 title "", \
       "alpha_tracking_default.dat" index 7 using 1:2 with lines lw 1.5 lc palette frac 0.875 title "", \
       "alpha_tracking_default.dat" index 7 using 1:3 with lines lw 1 dt 2 lc palette frac 0.875 title "", \
       "alpha_tracking_default.dat" index 8 using 1:2 with lines lw 1.5 lc palette frac 1.000 title "", \
       "alpha_tracking_default.dat" index 8 using 1:3 with lines lw 1 dt 2 lc palette frac 1.000 title ""
  set title "final alpha vs final 1/std across layers (Pearson r = 0.644)"
  set xlabel "1 / std(input), end of training"
  set ylabel "alpha, end of training"
  set key top left
  plot "alpha_tracking_default.dat" index 9 using 1:2 with points pt 7 ps 1.2 lc rgb "#1f77b4" title "one point per DyT layer", 0.4749494956599341 + 0.16677385526584587 * (x - 0.47335569600371863) with lines lw 1.5 lc rgb "#808080" dt 2 title "least-squares line"
  unset multiplot
  set output
}
