# analysis/alpha0_sweep: training loss: render with `gnuplot train_loss.gp` in this folder (writes the .png and .svg)
set terminal pngcairo size 960,600 noenhanced font "sans,11"
set output "train_loss.png"
set title "analysis/alpha0_sweep: training loss"
set xlabel "step"
set ylabel "loss (train)"
set key top right
set grid

plot "train_loss.dat" index 0 using 1:3:4 with filledcurves lc 1 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 0 using 1:2 with lines lw 2 lc 1 title "alpha0 = 0.1: width 32 (n=1)", \
     "train_loss.dat" index 1 using 1:3:4 with filledcurves lc 2 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 1 using 1:2 with lines lw 2 lc 2 title "alpha0 = 0.1: width 64 (n=1)", \
     "train_loss.dat" index 2 using 1:3:4 with filledcurves lc 3 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 2 using 1:2 with lines lw 2 lc 3 title "alpha0 = 0.1: width 128 (n=1)", \
     "train_loss.dat" index 3 using 1:3:4 with filledcurves lc 4 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 3 using 1:2 with lines lw 2 lc 4 title "alpha0 = 0.5: width 32 (n=1)", \
     "train_loss.dat" index 4 using 1:3:4 with filledcurves lc 5 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 4 using 1:2 with lines lw 2 lc 5 title "alpha0 = 0.5: width 64 (n=1)", \
     "train_loss.dat" index 5 using 1:3:4 with filledcurves lc 6 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 5 using 1:2 with lines lw 2 lc 6 title "alpha0 = 0.5: width 128 (n=1)", \
     "train_loss.dat" index 6 using 1:3:4 with filledcurves lc 7 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 6 using 1:2 with lines lw 2 lc 7 title "alpha0 = 1.0: width 32 (n=1)", \
     "train_loss.dat" index 7 using 1:3:4 with filledcurves lc 8 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 7 using 1:2 with lines lw 2 lc 8 title "alpha0 = 1.0: width 64 (n=1)", \
     "train_loss.dat" index 8 using 1:3:4 with filledcurves lc 9 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 8 using 1:2 with lines lw 2 lc 9 title "alpha0 = 1.0: width 128 (n=1)", \
     "train_loss.dat" index 9 using 1:3:4 with filledcurves lc 10 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 9 using 1:2 with lines lw 2 lc 10 title "alpha0 = 2.0: width 32 (n=1)", \
     "train_loss.dat" index 10 using 1:3:4 with filledcurves lc 11 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 10 using 1:2 with lines lw 2 lc 11 title "alpha0 = 2.0: width 64 (n=1)", \
     "train_loss.dat" index 11 using 1:3:4 with filledcurves lc 12 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 11 using 1:2 with lines lw 2 lc 12 title "alpha0 = 2.0: width 128 (n=1)", \
     "train_loss.dat" index 12 using 1:3:4 with filledcurves lc 13 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 12 using 1:2 with lines lw 2 lc 13 title "alpha0 = 4.0: width 32 (n=1)", \
     "train_loss.dat" index 13 using 1:3:4 with filledcurves lc 14 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 13 using 1:2 with lines lw 2 lc 14 title "alpha0 = 4.0: width 64 (n=1)", \
     "train_loss.dat" index 14 using 1:3:4 with filledcurves lc 15 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 14 using 1:2 with lines lw 2 lc 15 title "alpha0 = 4.0: width 128 (n=1)"
set terminal svg size 960,600 noenhanced dynamic
set output "train_loss.svg"
replot
