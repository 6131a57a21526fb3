# Extra metafor reference cases in the schema of ../shared/benchmarks/meta/cases.json, for
# features the shared set does not exercise (levels, interactions, cbind mods, Q0, zero-cell
# options, correct=FALSE, ...). Written for metasift; run with R 4.2 + metafor 3.8-1:
#   Rscript make_extra_cases.R <shared data dir> <output json>
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
ddir <- args[1]; out <- args[2]
names_ <- c("dat.bcg", "dat.yusuf1985", "dat.normand1999", "dat.curtis1998", "dat.pritz1997",
            "dat.molloy2014", "dat.hart1999", "dat.hackshaw1998", "dat.raudenbush1985",
            "dat.pagliaro1992", "datMorrisT", "datMorrisC", "dat.colditz1994")
for (nm in names_) assign(nm, read.csv(file.path(ddir, paste0(nm, ".csv")), stringsAsFactors = FALSE))
dat.yusuf1985$table <- as.character(dat.yusuf1985$table)
ctl <- "control=list(threshold=1e-10, tol=1e-12, maxiter=10000)"
num <- function(x) { x <- as.numeric(x); x[is.nan(x)] <- NA; x }
fs <- function(res) { f <- fitstats(res); list(logLik = num(f[1]), deviance = num(f[2]), AIC = num(f[3]), BIC = num(f[4]), AICc = num(f[5])) }
ci_part <- function(m) list(estimate = num(m[1]), ci.lb = num(m[2]), ci.ub = num(m[3]))
uni <- function(res, transf = NULL, newmods = NULL) {
  o <- list(model = "rma.uni", method = res$method, test = res$test, k = res$k, p = res$p,
            beta = as.list(setNames(num(res$beta), rownames(res$beta))), se = num(res$se),
            stat_type = ifelse(res$test == "knha", "t", "z"), stat = num(res$zval), pval = num(res$pval),
            ci.lb = num(res$ci.lb), ci.ub = num(res$ci.ub))
  if (res$test == "knha") o$ddf <- num(res$ddf)
  o$tau2 <- num(res$tau2)
  if (!is.element(res$method, c("FE", "EE"))) o$se.tau2 <- num(res$se.tau2)
  o$I2 <- num(res$I2); o$H2 <- num(res$H2)
  if (res$p > 1 && !is.null(res$R2)) o$R2 <- num(res$R2)
  o$QE <- num(res$QE); o$QEp <- num(res$QEp); o$QE.df <- res$k - res$p
  o$QM <- num(res$QM); o$QMp <- num(res$QMp); o$QMdf <- num(res$QMdf[!is.na(res$QMdf)])
  o$fitstats <- fs(res)
  if (res$int.only) {
    p <- predict(res)
    o$pred <- list(pred = num(p$pred), se = num(p$se), ci.lb = num(p$ci.lb), ci.ub = num(p$ci.ub))
    if (!is.element(res$method, c("FE", "EE"))) { o$pred$pi.lb <- num(p$pi.lb); o$pred$pi.ub <- num(p$pi.ub) }
    if (!is.null(transf)) {
      pt <- predict(res, transf = get(transf))
      o$pred_transformed <- list(transf = transf, pred = num(pt$pred), ci.lb = num(pt$ci.lb), ci.ub = num(pt$ci.ub))
      if (!is.element(res$method, c("FE", "EE"))) { o$pred_transformed$pi.lb <- num(pt$pi.lb); o$pred_transformed$pi.ub <- num(pt$pi.ub) }
    }
  }
  if (!is.null(newmods)) {
    p <- predict(res, newmods = newmods)
    o$pred_newmods <- list(newmods = newmods, pred = num(p$pred), se = num(p$se), ci.lb = num(p$ci.lb),
                           ci.ub = num(p$ci.ub), pi.lb = num(p$pi.lb), pi.ub = num(p$pi.ub))
  }
  if (!is.element(res$method, c("FE", "EE"))) {
    ci <- confint(res, control = list(tol = 1e-12, maxiter = 10000))$random
    o$confint <- list(call = "confint(res)", type = "Q-profile", tau2 = ci_part(ci[1, ]), tau = ci_part(ci[2, ]),
                      I2 = ci_part(ci[3, ]), H2 = ci_part(ci[4, ]))
  }
  o$studies <- list(yi = num(res$yi), vi = num(res$vi), weights_pct = num(weights(res)), slab = as.character(res$slab))
  o
}
mh <- function(res) {
  o <- list(model = class(res)[1], measure = res$measure, k = res$k, k.yi = res$k.yi, beta = num(res$beta),
            se = num(res$se), stat_type = "z", stat = num(res$zval), pval = num(res$pval), ci.lb = num(res$ci.lb),
            ci.ub = num(res$ci.ub), QE = num(res$QE), QEp = num(res$QEp), I2 = num(res$I2), H2 = num(res$H2), tau2 = 0)
  if (!is.null(res$MH) && !is.na(res$MH)) { o$MH <- num(res$MH); o$MHp <- num(res$MHp) }
  if (!is.null(res$TA) && !is.na(res$TA)) { o$TA <- num(res$TA); o$TAp <- num(res$TAp) }
  if (res$measure != "RD") o$exp <- list(pred = exp(num(res$beta)), ci.lb = exp(num(res$ci.lb)), ci.ub = exp(num(res$ci.ub)))
  o$studies <- list(yi = num(res$yi), vi = num(res$vi), weights_pct = num(weights(res)))
  o
}
cases <- list()
add <- function(id, category, dataset, prep, call, transf = NULL, newmods = NULL) {
  env <- new.env()
  for (p in prep) eval(parse(text = p), envir = env)
  res <- eval(parse(text = call), envir = env)
  cl <- class(res)[1]
  if (cl == "escalc") {
    o <- list(model = "escalc", measure = attr(res$yi, "measure"), k = nrow(res), yi = num(res$yi), vi = num(res$vi))
  } else if (cl == "rma.uni" && !inherits(res, "rma.uni.trimfill")) {
    o <- uni(res, transf, newmods)
  } else if (inherits(res, "rma.uni.trimfill")) {
    o <- uni(res); o$model <- "trimfill"; o$confint <- NULL
    o$studies$filled <- as.logical(res$fill)
    o$k0 <- res$k0; o$side <- res$side; o$se.k0 <- num(res$se.k0)
    o$p.k0 <- if (is.null(res$p.k0)) NULL else num(res$p.k0); o$estimator <- res$k0.est
  } else if (cl %in% c("rma.mh", "rma.peto")) {
    o <- mh(res)
  } else if (cl == "regtest") {
    f <- res$fit
    o <- list(model = "regtest", regtest_model = res$model, predictor = res$predictor,
              stat_type = ifelse(is.null(res$dfs) || is.na(res$dfs), "z", "t"), stat = num(res$zval), pval = num(res$pval),
              dfs = if (is.null(res$dfs) || is.na(res$dfs)) NULL else num(res$dfs),
              limit_est = num(res$est), limit_ci.lb = num(res$ci.lb), limit_ci.ub = num(res$ci.ub))
    if (inherits(f, "lm")) {
      cf <- coef(summary(f)); o$fit <- list(beta = as.list(setNames(num(cf[, 1]), rownames(cf))), se = num(cf[, 2]))
    } else {
      o$fit <- list(beta = as.list(setNames(num(f$beta), rownames(f$beta))), se = num(f$se), tau2 = num(f$tau2))
    }
  } else if (cl == "list.rma") {
    o <- list(model = "leave1out", slab = as.character(res$slab), estimate = num(res$estimate), se = num(res$se),
              stat = num(if (is.null(res$zval)) res$tval else res$zval), pval = num(res$pval), ci.lb = num(res$ci.lb), ci.ub = num(res$ci.ub),
              Q = num(res$Q), Qp = num(res$Qp))
    if (!is.null(res$tau2)) o$tau2 <- num(res$tau2)
    o$I2 <- num(res$I2); o$H2 <- num(res$H2)
  } else stop(paste("unknown class", cl))
  cases[[length(cases) + 1]] <<- list(case_id = id, set = "metasift-extra", dataset = dataset, category = category,
                                      description = id, input_columns = list(), prep = prep, call = call, outputs = o)
}
esRR <- 'dat <- escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg, slab=paste(author, year))'
esSMD <- 'dat <- escalc(measure="SMD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999, vtype="UB")'
r <- function(s) paste0(s, ", ", ctl, ")")
add("x_bcg_RR_REML_level90", "rma.uni", "dat.bcg", esRR, r('rma(yi, vi, data=dat, method="REML", level=90'))
add("x_bcg_RR_ML_knha_interaction", "metareg", "dat.bcg", esRR, r('rma(yi, vi, mods = ~ ablat * year, data=dat, method="ML", test="knha"'))
add("x_bcg_RR_REML_factor_plus", "subgroup", "dat.bcg", esRR, r('rma(yi, vi, mods = ~ factor(alloc) + ablat, data=dat, method="REML"'))
add("x_bcg_RR_PM_cbind", "metareg", "dat.bcg", esRR, r('rma(yi, vi, mods = cbind(ablat, year), data=dat, method="PM"'))
add("x_bcg_RR_DL_btt", "metareg", "dat.bcg", esRR, r('rma(yi, vi, mods = ~ ablat + year, btt=3, data=dat, method="DL"'))
add("x_bcg_RR_HS_knha_newmods", "metareg", "dat.bcg", esRR, r('rma(yi, vi, mods = ~ ablat, data=dat, method="HS", test="knha"'), newmods = c(20, 40))
add("x_bcg_RR_subset_in", "rma.uni", "dat.bcg", esRR, r('rma(yi, vi, data=dat, subset=alloc %in% c("random","systematic"), method="EB", test="knha"'))
add("x_normand_SMD_UB_REML", "rma.uni", "dat.normand1999", esSMD, r('rma(yi, vi, data=dat, method="REML"'))
add("x_normand_MD_HE_knha", "rma.uni", "dat.normand1999", 'dat <- escalc(measure="MD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.normand1999)', r('rma(yi, vi, data=dat, method="HE", test="knha"'))
add("x_curtis_ROM_SJ_knha_exp", "rma.uni", "dat.curtis1998", 'dat <- escalc(measure="ROM", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.curtis1998)', r('rma(yi, vi, data=dat, method="SJ", test="knha"'), transf = "exp")
add("x_pritz_PAS_DL", "proportion", "dat.pritz1997", 'dat <- escalc(measure="PAS", xi=xi, ni=ni, data=dat.pritz1997)', r('rma(yi, vi, data=dat, method="DL"'), transf = "transf.iarcsin")
add("x_molloy_ZCOR_ML_knha", "proportion", "dat.molloy2014", 'dat <- escalc(measure="ZCOR", ri=ri, ni=ni, data=dat.molloy2014)', r('rma(yi, vi, data=dat, method="ML", test="knha"'), transf = "transf.ztor")
add("x_pagliaro_PLO_REML", "proportion", "dat.pagliaro1992", 'dat <- escalc(measure="PLO", xi=xi, ni=ni, data=dat.pagliaro1992)', r('rma(yi, vi, data=dat, method="REML"'), transf = "transf.ilogit")
add("x_escalc_yusuf6_OR_all", "escalc", "dat.yusuf1985", character(0), 'escalc(measure="OR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="6"), to="all", add=1/4)')
add("x_escalc_yusuf6_RR_drop00", "escalc", "dat.yusuf1985", character(0), 'escalc(measure="RR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="6"), drop00=TRUE)')
add("x_escalc_yusuf6_RD", "escalc", "dat.yusuf1985", character(0), 'escalc(measure="RD", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="6"))')
add("x_escalc_yusuf6_PETO", "escalc", "dat.yusuf1985", character(0), 'escalc(measure="PETO", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="6"))')
add("x_escalc_pagliaro_PR", "escalc", "dat.pagliaro1992", character(0), 'escalc(measure="PR", xi=xi, ni=ni, data=dat.pagliaro1992)')
add("x_escalc_pagliaro_PLN", "escalc", "dat.pagliaro1992", character(0), 'escalc(measure="PLN", xi=xi, ni=ni, data=dat.pagliaro1992)')
add("x_escalc_pagliaro_PLO_if0all", "escalc", "dat.pagliaro1992", character(0), 'escalc(measure="PLO", xi=xi, ni=ni, data=dat.pagliaro1992, to="if0all")')
add("x_yusuf6_MH_OR_nocorrect", "rma.mh", "dat.yusuf1985", character(0), 'rma.mh(measure="OR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="6"), correct=FALSE)')
add("x_yusuf6_MH_RD", "rma.mh", "dat.yusuf1985", character(0), 'rma.mh(measure="RD", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="6"))')
add("x_colditz_MH_OR_level90", "rma.mh", "dat.colditz1994", character(0), 'rma.mh(measure="OR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.colditz1994, level=90)')
add("x_yusuf9_PETO_level99", "rma.peto", "dat.yusuf1985", character(0), 'rma.peto(ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="9"), level=99)')
add("x_hackshaw_trimfill_Q0", "trimfill", "dat.hackshaw1998", c('dat <- dat.hackshaw1998', 'fit <- rma(yi, vi, data=dat, method="FE")'), 'trimfill(fit, estimator="Q0")')
add("x_bcg_trimfill_DL_left", "trimfill", "dat.bcg", c(esRR, 'fit <- rma(yi, vi, data=dat, method="DL")'), 'trimfill(fit, side="left")')
add("x_raud_trimfill_R0_FE", "trimfill", "dat.raudenbush1985", c('dat <- dat.raudenbush1985', 'fit <- rma(yi, vi, data=dat, method="FE")'), 'trimfill(fit, estimator="R0")')
add("x_bcg_regtest_knha", "regtest", "dat.bcg", c(esRR, r('fit <- rma(yi, vi, data=dat, method="REML", test="knha"')), 'regtest(fit)')
add("x_normand_regtest_lm_vi", "regtest", "dat.normand1999", c(esSMD, 'fit <- rma(yi, vi, data=dat, method="DL")'), 'regtest(fit, model="lm", predictor="vi")')
add("x_normand_regtest_ninv", "regtest", "dat.normand1999", c(esSMD, 'fit <- rma(yi, vi, data=dat, method="DL")'), 'regtest(fit, predictor="ninv")')
add("x_bcg_leave1out_DL_knha", "leave1out", "dat.bcg", c(esRR, 'fit <- rma(yi, vi, data=dat, method="DL", test="knha")'), 'leave1out(fit)')
for (m in c("SJ", "HE", "HS", "EB", "ML", "FE")) {
  add(paste0("x_bcg_RR_", m, "_ablat"), "metareg", "dat.bcg", esRR, r(paste0('rma(yi, vi, mods = ~ ablat, data=dat, method="', m, '"')))
  add(paste0("x_raud_", m, "_weeks_knha"), "metareg", "dat.raudenbush1985", 'dat <- dat.raudenbush1985', r(paste0('rma(yi, vi, mods = ~ weeks + factor(setting), data=dat, method="', m, '", test="knha"')))
}
add("x_hackshaw_REML_nointercept", "subgroup", "dat.hackshaw1998", 'dat <- dat.hackshaw1998', r('rma(yi, vi, mods = ~ factor(design) - 1, data=dat, method="REML"'))
add("x_escalc_morrisC_SMCC", "escalc", "datMorrisC", character(0), 'escalc(measure="SMCC", m1i=m_post, m2i=m_pre, sd1i=sd_post, sd2i=sd_pre, ni=ni, ri=ri, data=datMorrisC)')
add("x_escalc_morrisC_MC", "escalc", "datMorrisC", character(0), 'escalc(measure="MC", m1i=m_post, m2i=m_pre, sd1i=sd_post, sd2i=sd_pre, ni=ni, ri=ri, data=datMorrisC)')
add("x_escalc_curtis_SMD", "escalc", "dat.curtis1998", character(0), 'escalc(measure="SMD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat.curtis1998, vtype="UB")')
add("x_escalc_yusuf9_PETO_drop00", "escalc", "dat.yusuf1985", character(0), 'escalc(measure="PETO", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="9"), drop00=TRUE)')
add("x_colditz_MH_RD", "rma.mh", "dat.colditz1994", character(0), 'rma.mh(measure="RD", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.colditz1994)')
add("x_yusuf12a_MH_RR", "rma.mh", "dat.yusuf1985", character(0), 'rma.mh(measure="RR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.yusuf1985, subset=(table=="12a"))')
add("x_hart_MH_IRR_nocorrect", "rma.mh", "dat.hart1999", character(0), 'rma.mh(measure="IRR", x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i, data=dat.hart1999, correct=FALSE)')
add("x_molloy_trimfill_REML_L0", "trimfill", "dat.molloy2014", c('dat <- escalc(measure="ZCOR", ri=ri, ni=ni, data=dat.molloy2014)', 'fit <- rma(yi, vi, data=dat, method="PM")'), 'trimfill(fit)')
add("x_hackshaw_leave1out_ML", "leave1out", "dat.hackshaw1998", c('dat <- dat.hackshaw1998', r('fit <- rma(yi, vi, data=dat, method="ML"')), 'leave1out(fit)')
add("x_pritz_regtest_sqrtninv", "regtest", "dat.pritz1997", c('dat <- escalc(measure="PLO", xi=xi, ni=ni, data=dat.pritz1997)', 'fit <- rma(yi, vi, data=dat, method="HE")'), 'regtest(fit, predictor="sqrtninv")')
doc <- list(generator = "tests/synthesis/reference/make_extra_cases.R", set = "metasift-extra",
            R_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
            n_cases = length(cases),
            datasets = lapply(names_, function(n) list(name = n, file = paste0("data/", n, ".csv"))),
            cases = cases)
writeLines(toJSON(doc, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = FALSE), out)
