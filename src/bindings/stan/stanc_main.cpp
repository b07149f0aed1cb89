// stanc_main.cpp - the Stan 2.21 compiler (stanc2) as a program, built from the parser
// sources that Debian's r-cran-stanheaders ships (StanHeaders/include/src/stan/lang/) by
// tools/stan/build-stanc.sh.  stanc_helper is CmdStan's whole command line:
//   stanc --name=NAME --o=OUT.cpp MODEL.stan
// Exit status 0 on success; on a syntax or semantic error stanc prints the message, with
// the line and column, on stderr and exits non-zero.
#include <stan/command/stanc_helper.hpp>

#include <iostream>

int main(int argc, const char *argv[]) {
  return stanc_helper(argc, argv, &std::cout, &std::cerr);
}
