import re,os,sys,itertools
root=sys.argv[1] if len(sys.argv)>1 else 'src/CdcSync'
folders=[d for d in os.listdir(root) if os.path.isdir(os.path.join(root,d)) and d not in('bin','obj')]
deps={}
why={}
for d in folders:
    for dp,_,fs in os.walk(os.path.join(root,d)):
        for f in fs:
            if not f.endswith('.cs'): continue
            p=os.path.join(dp,f); s=open(p).read()
            s2=re.sub(r'//.*','',s)
            s2=re.sub(r'///.*','',s2)
            for m in re.finditer(r'\bCdcSync\.(\w+)',s2):
                t=m.group(1)
                if t in folders and t!=d:
                    deps.setdefault(d,set()).add(t); why.setdefault((d,t),set()).add(p)
            for t in folders:
                if t==d: continue
                # a member named like the folder (e.g. a Polly `Pipeline` property) makes `Pipeline.X`
                # member access, not a namespace reference; `CdcSync.Pipeline` is still counted above
                if re.search(r'\b[\w<>,\[\]?]+\s+'+t+r'\s*(\{|=>|=|;|,|\))',s2): continue
                if re.search(r'(?<![\w.])'+t+r'\.[A-Z]\w*',s2):
                    deps.setdefault(d,set()).add(t); why.setdefault((d,t),set()).add(p)
# find 2-cycles and general SCCs
for a,b in itertools.combinations(sorted(folders),2):
    if b in deps.get(a,()) and a in deps.get(b,()):
        print(f"{a} <-> {b}: {a}->{b} in {sorted(os.path.basename(x) for x in why[(a,b)])[:4]}; {b}->{a} in {sorted(os.path.basename(x) for x in why[(b,a)])[:4]}")
# SCC
index={};low={};st=[];on=set();res=[];i=[0]
def sc(v):
    index[v]=low[v]=i[0];i[0]+=1;st.append(v);on.add(v)
    for w in deps.get(v,()):
        if w not in index: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],index[w])
    if low[v]==index[v]:
        c=[]
        while True:
            w=st.pop();on.discard(w);c.append(w)
            if w==v:break
        res.append(c)
for v in folders:
    if v not in index: sc(v)
print("SCCs:",[c for c in res if len(c)>1])
