# analysis/alpha_tracking default: alpha vs 1/std of the input (points every 100 steps; lines join a layer's): render with `gnuplot alpha_vs_invstd_default.gp` in this folder (writes the .png and .svg)
set terminal pngcairo size 960,600 noenhanced font "sans,11"
set output "alpha_vs_invstd_default.png"
set title "analysis/alpha_tracking default: alpha vs 1/std of the input (points every 100 steps; lines join a layer's)"
set xlabel "1 / std(input)"
set ylabel "alpha"
set key top right
set grid
set palette defined (0 "#2040c0", 1 "#e04020")
unset colorbox
plot "alpha_vs_invstd_default.dat" index 0 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 0 title "blocks.0.norm1", "alpha_vs_invstd_default.dat" index 1 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 0.125 title "", "alpha_vs_invstd_default.dat" index 2 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 0.25 title "", "alpha_vs_invstd_default.dat" index 3 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 0.375 title "", "alpha_vs_invstd_default.dat" index 4 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 0.5 title "", "alpha_vs_invstd_default.dat" index 5 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 0.625 title "", "alpha_vs_invstd_default.dat" index 6 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 0.75 title "", "alpha_vs_invstd_default.dat" index 7 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 0.875 title "", "alpha_vs_invstd_default.dat" index 8 using 1:2 with linespoints pt 7 ps 0.4 lc palette frac 1 title "norm"
set terminal svg size 960,600 noenhanced dynamic
set output "alpha_vs_invstd_default.svg"
replot
