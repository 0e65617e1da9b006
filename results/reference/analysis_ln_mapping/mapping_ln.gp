# analysis/ln_mapping (ln): norm-layer input vs output before the affine part
# Render with `gnuplot mapping_ln.gp` in this folder: writes mapping_ln.png, .svg and .pdf from mapping_ln.dat.
do for [fmt in "png svg pdf"] {
  if (fmt eq "png") { set terminal pngcairo size 1600,420 noenhanced font "sans,11" }
  if (fmt eq "svg") { set terminal svg size 1600,420 noenhanced dynamic font "sans,11" }
  if (fmt eq "pdf") { set terminal pdfcairo size 10.00in,2.62in noenhanced font "sans,7" }
  set output "mapping_ln.".fmt
  reset
  set grid lc rgb "#d8d8d8"
  set border lc rgb "#404040"
  set tics nomirror
  set offsets graph 0, 0, 0.04, 0.04
  
  set multiplot layout 1,4 title "analysis/ln_mapping (ln): norm-layer input vs output before the affine part"
  set key bottom right Left reverse
  set title "blocks.0.norm1"
  set xlabel "input x"
  set ylabel "output (normalised, before the affine)"
  plot "mapping_ln.dat" index 0 using 1:2 with dots lc rgb "#3060a0" title "channels", "mapping_ln.dat" index 1 using 1:2 with points pt 7 ps 0.25 lc rgb "#d03020" title "2 extreme channels", "mapping_ln.dat" index 2 using 1:2 with lines lw 2 lc rgb "#202020" title "2.05 tanh(1.27 x)"
  set title "blocks.1.norm1"
  set xlabel "input x"
  set ylabel ""
  plot "mapping_ln.dat" index 3 using 1:2 with dots lc rgb "#3060a0" title "channels", "mapping_ln.dat" index 4 using 1:2 with points pt 7 ps 0.25 lc rgb "#d03020" title "2 extreme channels", "mapping_ln.dat" index 5 using 1:2 with lines lw 2 lc rgb "#202020" title "5.83 tanh(0.20 x)"
  set title "blocks.2.norm2"
  set xlabel "input x"
  set ylabel ""
  plot "mapping_ln.dat" index 6 using 1:2 with dots lc rgb "#3060a0" title "channels", "mapping_ln.dat" index 7 using 1:2 with points pt 7 ps 0.25 lc rgb "#d03020" title "2 extreme channels", "mapping_ln.dat" index 8 using 1:2 with lines lw 2 lc rgb "#202020" title "5.37 tanh(0.17 x)"
  set title "norm"
  set xlabel "input x"
  set ylabel ""
  plot "mapping_ln.dat" index 9 using 1:2 with dots lc rgb "#3060a0" title "channels", "mapping_ln.dat" index 10 using 1:2 with points pt 7 ps 0.25 lc rgb "#d03020" title "2 extreme channels", "mapping_ln.dat" index 11 using 1:2 with lines lw 2 lc rgb "#202020" title "3.09 tanh(0.24 x)"
  unset multiplot
  set output
}
