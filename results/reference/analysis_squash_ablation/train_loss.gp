# analysis/squash_ablation: training loss: render with `gnuplot train_loss.gp` in this folder (writes the .png and .svg)
set terminal pngcairo size 960,600 noenhanced font "sans,11"
set output "train_loss.png"
set title "analysis/squash_ablation: training loss"
set xlabel "step"
set ylabel "loss (train)"
set key top right
set grid

plot "train_loss.dat" index 0 using 1:3:4 with filledcurves lc 1 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 0 using 1:2 with lines lw 2 lc 1 title "identity: learnable alpha (n=1)", \
     "train_loss.dat" index 1 using 1:3:4 with filledcurves lc 2 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 1 using 1:2 with lines lw 2 lc 2 title "tanh: learnable alpha (n=1)", \
     "train_loss.dat" index 2 using 1:3:4 with filledcurves lc 3 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 2 using 1:2 with lines lw 2 lc 3 title "hardtanh: learnable alpha (n=1)", \
     "train_loss.dat" index 3 using 1:3:4 with filledcurves lc 4 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 3 using 1:2 with lines lw 2 lc 4 title "sigmoid: learnable alpha (n=1)", \
     "train_loss.dat" index 4 using 1:3:4 with filledcurves lc 5 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 4 using 1:2 with lines lw 2 lc 5 title "identity: alpha removed (n=1)", \
     "train_loss.dat" index 5 using 1:3:4 with filledcurves lc 6 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 5 using 1:2 with lines lw 2 lc 6 title "tanh: alpha removed (n=1)", \
     "train_loss.dat" index 6 using 1:3:4 with filledcurves lc 7 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 6 using 1:2 with lines lw 2 lc 7 title "hardtanh: alpha removed (n=1)", \
     "train_loss.dat" index 7 using 1:3:4 with filledcurves lc 8 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 7 using 1:2 with lines lw 2 lc 8 title "sigmoid: alpha removed (n=1)"
set terminal svg size 960,600 noenhanced dynamic
set output "train_loss.svg"
replot
