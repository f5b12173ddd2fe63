import tomllib, sys, re, math
from collections import Counter
sys.path.insert(0,'.')
from a import P
d=tomllib.load(open('/work/main/knowledge/faq.toml','rb'))
E={e['key']:e for e in d['entry']}
def toks(s):
    s=re.sub(r'[\s，。？！、,.?!：:；;“”\'"《》（）()]','',s); return [s[i:i+2] for i in range(len(s)-1)]
docs={k:[e['question']]+e['alternates'] for k,e in E.items()}
# tf-idf centroid per entry + new phrasings of other entries (leave-one-out)
df=Counter()
allk={k:docs[k]+P[k] for k in E}
for k,L in allk.items():
    for s in L: df.update(set(toks(s)))
N=sum(len(L) for L in allk.values())
def vec(s):
    c=Counter(toks(s)); v={t:(1+math.log(n))*math.log(N/(1+df[t])) for t,n in c.items()}
    z=math.sqrt(sum(x*x for x in v.values())) or 1; return {t:x/z for t,x in v.items()}
V={k:[vec(s) for s in L] for k,L in allk.items()}
def cos(a,b): return sum(x*b.get(t,0) for t,x in a.items())
miss=0
for k,L in P.items():
    for s in L:
        v=vec(s); sc={}
        for k2,vs in V.items():
            sims=sorted((cos(v,u) for u,ss in zip(vs,allk[k2]) if ss!=s),reverse=True)[:3]
            sc[k2]=sum(sims)/len(sims)
        top=sorted(sc,key=sc.get,reverse=True)
        if top[0]!=k:
            miss+=1; print(f"{k} -> {top[0]} ({sc[top[0]]:.2f} vs {sc[k]:.2f}) {s}")
print('miss',miss)
