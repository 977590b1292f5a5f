#include <stdio.h>
#include <wchar.h>
#include <locale.h>
#include <stdlib.h>
int main(void){ if(!setlocale(LC_ALL,"C.UTF-8")) return 1; int prev=-9; unsigned start=0;
 for(unsigned cp=0x80; cp<=0x110000; cp++){ int w = cp==0x110000 ? -9 : ((cp>=0xd800&&cp<=0xdfff)? -2 : wcwidth(cp));
  if(w!=prev){ if(prev!=-9) printf("%x %x %d\n",start,cp-1,prev); prev=w; start=cp; } } return 0; }
