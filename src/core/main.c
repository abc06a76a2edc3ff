#include <stdio.h>
int main(void) { puts("souk"); return 0; }
