# mini/mae_fmnist: training loss: render with `gnuplot train_loss.gp` in this folder (writes the .png and .svg)
set terminal pngcairo size 960,600 noenhanced font "sans,11"
set output "train_loss.png"
set title "mini/mae_fmnist: training loss"
set xlabel "step"
set ylabel "loss (train)"
set key top right
set grid

plot "train_loss.dat" index 0 using 1:3:4 with filledcurves lc 1 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 0 using 1:2 with lines lw 2 lc 1 title "MAE pretrain + fine-tune: LN (n=2)", \
     "train_loss.dat" index 1 using 1:3:4 with filledcurves lc 2 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 1 using 1:2 with lines lw 2 lc 2 title "MAE pretrain + fine-tune: DyT (n=2)", \
     "train_loss.dat" index 2 using 1:3:4 with filledcurves lc 3 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 2 using 1:2 with lines lw 2 lc 3 title "from scratch (same fine-tuning): LN (n=2)", \
     "train_loss.dat" index 3 using 1:3:4 with filledcurves lc 4 fs transparent solid 0.2 notitle, \
     "train_loss.dat" index 3 using 1:2 with lines lw 2 lc 4 title "from scratch (same fine-tuning): DyT (n=2)"
set terminal svg size 960,600 noenhanced dynamic
set output "train_loss.svg"
replot
